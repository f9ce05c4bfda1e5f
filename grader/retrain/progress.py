"""Which model the retrain is training and how far it is: a progress bar per model in the terminal.

`grader check` runs in the student's terminal, where a retrain of several minutes with no word of
progress looks like a hang. The trainers call a `Progress` tick with the epochs done so far (moving
inside an epoch too, see trainer.CHUNK_STEPS); `TerminalProgress` draws one tqdm bar per model.
Batch workers pass no progress object (the batch has its own bar).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Protocol, TextIO

from tqdm import tqdm

from grader.results import RunResult

Progress = Callable[[float], None]  # a trainer's tick: the epochs done so far in this fit (fractional)

EXERCISE_WORDS = {"ex1": "Ej. 1", "ex2": "Ej. 2", "ex3": "Ej. 3", "ex4": "Ej. 4"}


class RetrainProgress(Protocol):
    def name_models(self, names: dict[int, str]) -> None:
        """Human names of the models by probe id, known before training (from the attribution)."""

    def start(self, run: RunResult, epochs: int) -> Progress:
        """A model starts training `epochs` epochs; returns the tick its trainer calls."""

    def finish(self, run: RunResult) -> None:
        """The model's training ended (done, stopped early, cut by the budget or failed)."""


def shifted(tick: Progress | None, offset: float) -> Progress | None:
    """The tick of a run's later fit: its epochs count after those of the fits before it."""
    if tick is None or not offset:
        return tick
    return lambda epochs_done: tick(offset + epochs_done)


def model_name(model_id: int, exercise: str | None, label: str) -> str:
    """'m7 · Ej. 1 · ReLU', 'm12 · red final' (Spanish: the student reads it)."""
    parts = [f"m{model_id}"]
    if label == "final":
        return f"m{model_id} · red final"
    if exercise:
        parts.append(EXERCISE_WORDS.get(exercise, exercise))
    if label:
        parts.append(label)
    return " · ".join(parts)


class TerminalProgress:
    """One bar per model: '<name>  |█████     | 1.4/3 épocas [00:12<00:14]'."""

    def __init__(self, stream: TextIO | None = None):
        self._stream = stream or sys.stderr
        self._names: dict[int, str] = {}
        self._bars: dict[str, tqdm] = {}

    def name_models(self, names: dict[int, str]) -> None:
        self._names.update(names)

    def start(self, run: RunResult, epochs: int) -> Progress:
        name = self._names.get(run.model_id, f"m{run.model_id}")
        bar = tqdm(total=max(epochs, 1), desc=f"Entrenando {name}", file=self._stream, dynamic_ncols=True,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total} épocas [{elapsed}<{remaining}]")
        self._bars[run.run_id] = bar

        def tick(epochs_done: float) -> None:
            bar.n = min(float(epochs_done), float(bar.total))
            bar.refresh()

        return tick

    def finish(self, run: RunResult) -> None:
        bar = self._bars.pop(run.run_id, None)
        if bar is not None:
            bar.close()


def budget_cuts(runs: list[RunResult], budget_name: str, retrain_s: float, *, capture_cut: str = "") -> list[str]:
    """What the budget cut, in Spanish for the student: the notebook's run stopped by the check's bound
    (`capture_cut`, composed by the caller), shortened or unfinished models, models not trained."""
    lines = [capture_cut] if capture_cut else []
    for run in runs:
        name = model_name(run.model_id, run.exercise, run.label)
        if run.status == "budget" and run.cut == "epochs":
            lines.append(f"{name}: épocas limitadas a {run.epochs_requested} (máximo del corrector)")
        elif run.status == "budget" and not run.epochs_run:
            lines.append(f"{name}: sin entrenar, no quedaba tiempo ({retrain_s:.0f} s para reentrenar)")
        elif run.status == "budget":
            lines.append(f"{name}: {run.epochs_run} de {run.epochs_requested} épocas, se acabó el tiempo "
                         f"({retrain_s:.0f} s para reentrenar)")
        if run.cut != "epochs" and run.epochs_asked > run.epochs_requested > 0:  # the quick budget's shortening
            lines.append(f"{name}: {run.epochs_requested} de {run.epochs_asked} épocas (presupuesto {budget_name})")
    if lines and budget_name == "quick":
        lines.append("lo que no se pudo comprobar no cuenta como fallo; la referencia es `grader grade` "
                     "(presupuesto completo)")
    return lines
