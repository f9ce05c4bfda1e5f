"""Comparison plots drawn from the grader's own retrain runs (never from the student's outputs).

One figure per exercise: accuracy and loss side by side, one colour per run, training curves solid and
validation curves dashed. The final model (ex4) gets a horizontal line at the 90% validation target.
Figures are built with `matplotlib.figure.Figure` on the Agg canvas (no pyplot global state, so it is
safe in worker threads) and returned as `data:image/png;base64,...` URIs that HTML and WeasyPrint embed.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

from grader.results import GradeResult, RunResult

TARGET_VAL_ACCURACY = 0.90  # the assignment asks for a final validation accuracy close to 90%
LOSS_CAP = 10.0  # cross-entropy starts near ln(10) = 2.3 on Fashion-MNIST; far above it is divergence
PLOT_DPI = 110
FIGSIZE = (9.0, 3.6)  # inches; wide enough for two panels, short enough for two figures per A4 page

# Keras <= 2.2 called the metric "acc"; old hand-ins replayed by the grader may still carry it.
_ACC_KEYS = (("accuracy", "val_accuracy"), ("acc", "val_acc"))
_LOSS_KEYS = ("loss", "val_loss")
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def render_plots(result: GradeResult) -> dict[str, str]:
    """Return exercise id -> PNG data URI for every exercise with at least one run that has a history."""
    by_exercise: dict[str, list[RunResult]] = {}
    for run in result.runs:
        if run.exercise and run.history:
            by_exercise.setdefault(run.exercise, []).append(run)
    return {ex: _png_data_uri(_exercise_figure(ex, runs)) for ex, runs in sorted(by_exercise.items())}


def epochs_text(run: RunResult) -> str:
    """Epochs of a run as students read them: "2 de 20 pedidas" when the grader trained fewer than
    the student asked for (quick budget, caps), else "14/20" (trained / planned)."""
    if capped(run):
        return f"{run.epochs_run} de {run.epochs_asked} pedidas"
    return f"{run.epochs_run}/{run.epochs_requested}" if run.epochs_requested else str(run.epochs_run)


def capped(run: RunResult) -> bool:
    """The grader planned fewer epochs than the student's fit() calls asked for."""
    return run.epochs_asked > run.epochs_requested > 0


def _capped_title(runs: list[RunResult]) -> str:
    """Spanish title for a figure whose runs were shortened, so that nobody reads a 2-epoch curve
    as the student's result; empty when none was."""
    pairs = list(dict.fromkeys((r.epochs_requested, r.epochs_asked) for r in runs if capped(r)))
    if not pairs:
        return ""
    shown = ", ".join(f"{done} de {asked}" for done, asked in pairs[:3])
    return (f"Reentrenamiento abreviado por el corrector: {shown} épocas pedidas. "
            "Las curvas no muestran el entrenamiento completo.")


def _acc_curves(history: dict[str, list[float]]) -> tuple[list[float], list[float]]:
    for train_key, val_key in _ACC_KEYS:
        if train_key in history or val_key in history:
            return list(history.get(train_key, [])), list(history.get(val_key, []))
    return [], []


def _run_label(run: RunResult) -> str:
    label = run.label or run.run_id
    if len(label) > 40:
        label = label[:39] + "…"
    label = f"{label} (final)" if run.is_final and "final" not in label.lower() else label
    # Labels can echo the student's code; "$...$" would otherwise be parsed as mathtext (and can raise).
    return label.replace("$", r"\$")


def _finite(values: Iterable[float | None]) -> list[float]:
    """NaN/inf/None become gaps (NaN): a diverged run still draws its finite epochs."""
    out = []
    for v in values:
        try:
            x = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            x = math.nan
        out.append(x if math.isfinite(x) else math.nan)
    return out


def _plot_pair(ax, train: Iterable[float], val: Iterable[float], colour: str) -> list[float]:
    train, val = _finite(train), _finite(val)
    if train:
        ax.plot(range(1, len(train) + 1), train, color=colour, linestyle="-")
    if val:
        ax.plot(range(1, len(val) + 1), val, color=colour, linestyle="--")
    return [x for x in train + val if not math.isnan(x)]


def _exercise_figure(exercise: str, runs: list[RunResult]) -> Figure:
    fig = Figure(figsize=FIGSIZE, dpi=PLOT_DPI, layout="constrained")
    ax_acc, ax_loss = fig.subplots(1, 2)
    # One shared legend under both panels (colour = run, line style = split) keeps the curves clear.
    handles = []
    losses: list[float] = []
    for i, run in enumerate(runs):
        colour = _COLOURS[i % len(_COLOURS)]
        _plot_pair(ax_acc, *_acc_curves(run.history), colour)
        losses += _plot_pair(ax_loss, run.history.get(_LOSS_KEYS[0], []), run.history.get(_LOSS_KEYS[1], []), colour)
        handles.append(Line2D([], [], color=colour, linewidth=4, label=_run_label(run)))
    handles.append(Line2D([], [], color="#333333", linestyle="-", label="entrenamiento"))
    handles.append(Line2D([], [], color="#333333", linestyle="--", label="validación"))
    if any(r.is_final for r in runs) or exercise == "ex4":
        ax_acc.axhline(TARGET_VAL_ACCURACY, color="#444444", linewidth=1, linestyle=":")
        handles.append(Line2D([], [], color="#444444", linestyle=":", label="objetivo 90 %"))
    if losses and max(losses) > LOSS_CAP:
        # One diverged run (loss 1e9) would flatten every other curve to a line at zero.
        ax_loss.set_ylim(0, LOSS_CAP)
        ax_loss.text(0.02, 0.97, f"pérdida recortada en {LOSS_CAP:g}", transform=ax_loss.transAxes, fontsize=7, va="top")
    if title := _capped_title(runs):
        fig.suptitle(title, fontsize=9, color="#8a4b00")
    ax_acc.set_title("Precisión (accuracy)", fontsize=10)
    ax_loss.set_title("Pérdida (loss)", fontsize=10)
    for ax in (ax_acc, ax_loss):
        ax.set_xlabel("época", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(True, alpha=0.3)
        # Integer epochs only: fractional ticks on a 2-epoch run look like a bug.
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), fontsize=8, frameon=False)
    return fig


def _png_data_uri(fig: Figure) -> str:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
    # A 64-colour palette is visually identical for line plots and 4x smaller than the RGBA PNG,
    # which keeps a report with four figures well under 200 kB.
    buf = io.BytesIO()
    image.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(buf, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
