"""Which exercise each training belongs to, and which model is the final one.

Three sources, strongest first: the section heading above the fit (or the file / function name of a
.py hand-in), the models themselves (two fits that differ only in the hidden activation are the
exercise-1 comparison, only in initializers exercise 2, only in the optimizer exercise 3; a
regularised model is exercise 4), and notebook order (an unexplained fit belongs with its
predecessor). Headings may be missing or renamed: the structure alone still attributes.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

from grader.capture.trace import ArrayRef, FitRecord, Trace
from grader.load import Submission, exercise_number, markdown_headings
from grader.results import RunResult
from grader.rules.places import place
from grader.source.static import normalize_activation, normalize_initializer, normalize_optimizer

TEST_ROWS = 10_000  # Fashion-MNIST test size: the fallback when row fingerprints are missing

_HEADING_KEYWORDS = (
    ("ex4", r"regulariz|red final|modelo final|ejercicio\s*4|pregunta\s*4|\b4\.[12]\b"),
    ("ex3", r"optimiz|ejercicio\s*3"),
    ("ex2", r"iniciali|ejercicio\s*2"),
    ("ex1", r"activaci|ejercicio\s*1"),
)
_REGULARIZING_LAYERS = {"Dropout", "BatchNormalization", "GaussianNoise", "AlphaDropout", "SpatialDropout2D",
                        "LayerNormalization", "GaussianDropout", "ActivityRegularization"}
_DISPLAY = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "elu": "ELU", "selu": "SELU"}


@dataclass
class FitAttribution:
    fit_index: int
    model_id: int
    exercise: str | None
    label: str
    source: str  # "heading" | "file" | "function" | "structure" | "regularized" | "order" | "none"


@dataclass
class Attribution:
    fits: list[FitAttribution] = field(default_factory=list)
    final_model_id: int | None = None
    evidence: list[str] = field(default_factory=list)  # Spanish, for the report

    def exercise_of_fit(self, index: int) -> str | None:
        return next((f.exercise for f in self.fits if f.fit_index == index), None)

    def fits_for(self, exercise: str) -> list[int]:
        return [f.fit_index for f in self.fits if f.exercise == exercise]

    def exercise_of_model(self, model_id: int) -> str | None:
        return next((f.exercise for f in self.fits if f.model_id == model_id and f.exercise), None)

    def label_of_model(self, model_id: int) -> str:
        if model_id == self.final_model_id:
            return "final"
        return next((f.label for f in reversed(self.fits) if f.model_id == model_id and f.label), "")

    def label_runs(self, runs: list[RunResult]) -> None:
        """Fill exercise, label and is_final of the retrain runs from this attribution."""
        for run in runs:
            run.exercise = self.exercise_of_model(run.model_id)
            run.label = self.label_of_model(run.model_id)
            run.is_final = run.model_id == self.final_model_id

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fold(text: str) -> str:
    """Lowercase without accents ("Inicialización" -> "inicializacion")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def exercise_of_text(text: str | None) -> str | None:
    """Exercise named by a heading, file or function name; None when it names none."""
    if not text:
        return None
    low = fold(text)
    for exercise, pattern in _HEADING_KEYWORDS:
        if re.search(pattern, low):
            return exercise
    match = re.match(r"\s*(?:parte|seccion|apartado)?\s*([1-4])(?:[.)\s:-]|$)", low)
    number = (int(match.group(1)),) if match else exercise_number(low.replace(" ", "_"))
    if number and 1 <= number[0] <= 4:
        return f"ex{number[0]}"
    return None


_MARKER = re.compile(r"^\W*(?:ejercicio|ejerc|ej|pregunta|apartado|exercise|parte)\s*\.?\s*([1-4])(?![0-9])")


def marker_exercise(line: str) -> str | None:
    """Exercise announced at the start of a comment or prose line: "# Ejercicio 2: ...", "Pregunta 4.2"."""
    match = _MARKER.match(fold(line.strip()))
    return f"ex{match.group(1)}" if match else None


def _comment_markers(source: str) -> list[tuple[int, str]]:
    """(line, exercise) of the comment lines of a code cell that announce an exercise."""
    out = []
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#") and (ex := marker_exercise(stripped.lstrip("#"))):
            out.append((number, ex))
    return out


def cell_exercises(sub: Submission) -> dict[int, str | None]:
    """Exercise of every cell from the text alone: Markdown headings, comment banners in code
    ("# Ejercicio 2"), and file names of .py hand-ins; an exercise lasts until the next one."""
    headings: dict[int, list[str]] = {}
    for idx, _level, text in markdown_headings(sub):
        headings.setdefault(idx, []).append(text)
    out: dict[int, str | None] = {}
    current: str | None = None
    file = None
    for cell in sub.cells:
        if cell.origin.file != file:
            file = cell.origin.file
            named = len(sub.files) > 1 or file.lower().endswith(".py")
            current = exercise_of_text(file.rsplit("/", 1)[-1]) if named and file else current
        found = [ex for text in headings.get(cell.index, []) if (ex := exercise_of_text(text))]
        if cell.cell_type == "code":
            found += [ex for _, ex in _comment_markers(cell.source)]
        if found:
            # A cell that opens with a banner belongs to that exercise; later banners carry on.
            out[cell.index] = found[0]
            current = found[-1]
        else:
            out[cell.index] = current
    return out


def exercise_at(sub: Submission, cell: int | None, line: int | None,
                cells: dict[int, str | None] | None = None) -> str | None:
    """Exercise of a line of code: the nearest comment banner above it in its cell, else its cell's."""
    if cell is None or not 0 <= cell < len(sub.cells):
        return None
    cells = cells if cells is not None else cell_exercises(sub)
    markers = [ex for number, ex in _comment_markers(sub.cells[cell].source) if line is None or number <= line]
    if markers:
        return markers[-1]
    previous = cells.get(cell - 1) if cell > 0 else None
    own = cells.get(cell)
    # The banner of this cell sits below `line`: the code above it still belongs to the previous exercise.
    if _comment_markers(sub.cells[cell].source) and line is not None:
        return previous
    return own


def touches_test(ref: ArrayRef | None) -> bool:
    """True when an array holds rows of the test set (fingerprints, or the test size as fallback)."""
    if ref is None:
        return False
    if ref.rows is not None:
        return ref.rows.get("test", 0) > 0
    return bool(ref.shape) and ref.shape[0] == TEST_ROWS


def is_regularized(fit: FitRecord) -> bool:
    return bool(regularization_of(fit))


def regularization_of(fit: FitRecord) -> list[str]:
    """Regularisation techniques of a fit: layers, kernel regularisers and callbacks."""
    found = []
    for layer in fit.model.layers:
        if layer.type in _REGULARIZING_LAYERS:
            found.append(layer.type)
        if layer.kernel_regularizer:
            found.append(f"regularizador {layer.kernel_regularizer}")
    found += [cb.class_name for cb in fit.callbacks if cb.class_name == "EarlyStopping"]
    return sorted(set(found))


def dense_activations(fit: FitRecord) -> list[str | None]:
    """Activation of each Dense layer, counting a separate Activation / ReLU layer right after a
    linear Dense as that layer's activation."""
    out: list[str | None] = []
    for layer in fit.model.layers:
        name = normalize_activation(layer.activation or "") or layer.activation
        if layer.type == "Dense":
            out.append(name)
        elif out and out[-1] in (None, "linear"):
            separate = name if layer.type == "Activation" else normalize_activation(layer.type)
            if separate:
                out[-1] = separate
    return out


def signature(fit: FitRecord) -> dict[str, Any]:
    """What the three comparisons vary: hidden activations, initializers, optimizer; plus the rest."""
    dense = [layer for layer in fit.model.layers if layer.type == "Dense"]
    opt = (fit.compile.optimizer if fit.compile else {}) or {}
    opt_name = normalize_optimizer(str(opt.get("class_name", ""))) or str(opt.get("class_name", ""))
    config = opt.get("config") or {}
    return {
        "activation": tuple(dense_activations(fit)[:-1]),
        "initializer": tuple(normalize_initializer(layer.kernel_initializer or "") or layer.kernel_initializer
                             for layer in dense),
        "optimizer": (opt_name, config.get("learning_rate")),
        "units": tuple(layer.units for layer in dense),
        "regularization": tuple(regularization_of(fit)),
    }


def label_for(exercise: str | None, fit: FitRecord) -> str:
    sig = signature(fit)
    values: tuple = ()
    if exercise == "ex1":
        values = sig["activation"]
    elif exercise == "ex2":
        values = sig["initializer"]
    elif exercise == "ex3":
        return sig["optimizer"][0] or ""
    elif exercise == "ex4":
        return "+".join(sig["regularization"]) or "sin regularización"
    distinct = [v for v in dict.fromkeys(values) if v]
    return "/".join(_DISPLAY.get(v, v) for v in distinct)


def attribute(sub: Submission, trace: Trace) -> Attribution:
    """Map every fit of the trace to an exercise and a label, and pick the final model."""
    out = Attribution()
    fits = sorted(trace.fits, key=lambda f: f.index)
    cells = cell_exercises(sub)
    chosen: dict[int, tuple[str | None, str]] = {f.index: _from_location(sub, f, cells) for f in fits}
    by_structure = _structure(fits)
    previous: str | None = None
    for fit in fits:
        exercise, source = chosen[fit.index]
        # Dropout / BatchNormalization / L1-L2 mark the final network; EarlyStopping alone does not,
        # since some students put it on every experiment to save time.
        if exercise is None and any(r != "EarlyStopping" for r in regularization_of(fit)):
            exercise, source = "ex4", "regularized"
        if exercise is None and by_structure.get(fit.index):
            options = by_structure[fit.index]
            exercise = previous if previous in options else min(options, key=lambda e: (e < (previous or ""), e))
            source = "structure"
        if exercise is None and is_regularized(fit):
            exercise, source = "ex4", "regularized"
        if exercise is None and previous is not None:
            exercise, source = previous, "order"
        chosen[fit.index] = (exercise, source)
        previous = exercise or previous
    for fit in fits:
        exercise, source = chosen[fit.index]
        out.fits.append(FitAttribution(fit.index, fit.model_id, exercise, label_for(exercise, fit), source))
    out.final_model_id, why = _final(fits, trace, out)
    out.evidence = _evidence(sub, out, fits, why)
    return out


def _from_location(sub: Submission, fit: FitRecord, cells: dict[int, str | None]) -> tuple[str | None, str]:
    loc = fit.location
    if loc.section and (ex := exercise_of_text(loc.section)):
        return ex, "file" if loc.section.lower().endswith(".py") else "heading"
    exercise = exercise_at(sub, loc.cell, loc.line, cells)
    if exercise:
        source = "file" if loc.cell is not None and sub.cells[loc.cell].origin.file.lower().endswith(".py") \
            and exercise_of_text(sub.cells[loc.cell].origin.file.rsplit("/", 1)[-1]) == exercise else "heading"
        return exercise, source
    if loc.function and (ex := exercise_of_text(loc.function)):
        return ex, "function"
    return None, "none"


def _structure(fits: list[FitRecord]) -> dict[int, set[str]]:
    """Candidate exercises per fit from pairs of models that differ in exactly one aspect."""
    aspect_exercise = {"activation": "ex1", "initializer": "ex2", "optimizer": "ex3"}
    sigs = {f.index: signature(f) for f in fits}
    found: dict[int, set[str]] = {}
    for a, b in itertools.combinations(fits, 2):
        if a.model_id == b.model_id:
            continue
        sa, sb = sigs[a.index], sigs[b.index]
        differ = [k for k in sa if sa[k] != sb[k]]
        if len(differ) == 1 and differ[0] in aspect_exercise:
            for f in (a, b):
                found.setdefault(f.index, set()).add(aspect_exercise[differ[0]])
    return found


def _evaluated_on_test(trace: Trace) -> set[int]:
    return {e.model_id for e in trace.evals if e.kind == "evaluate" and touches_test(e.x)}


def _final(fits: list[FitRecord], trace: Trace, out: Attribution) -> tuple[int | None, str]:
    tested = _evaluated_on_test(trace)
    last_fit = {f.model_id: f for f in fits}  # the latest fit of each model, in fit order
    ex4 = [m for m, f in last_fit.items() if out.exercise_of_fit(f.index) == "ex4"]
    regularized = [m for m, f in last_fit.items() if is_regularized(f)]
    for pool, why in (
        ([m for m in ex4 if m in tested and m in regularized], "modelo regularizado del ejercicio 4 evaluado en test"),
        ([m for m in ex4 if m in tested], "modelo del ejercicio 4 evaluado en test"),
        ([m for m in ex4 if m in regularized], "último modelo regularizado del ejercicio 4"),
        (ex4, "último modelo del ejercicio 4"),
        ([m for m in regularized if m in tested], "modelo regularizado evaluado en test"),
    ):
        if pool:
            return max(pool, key=lambda m: last_fit[m].index), why
    return None, "no hay modelo del ejercicio 4"




def _evidence(sub: Submission, out: Attribution, fits: list[FitRecord], why: str) -> list[str]:
    reasons = {"heading": "por el encabezado de la sección", "file": "por el nombre del fichero",
               "function": "por el nombre de la función", "structure": "porque solo cambia {aspect} respecto a otro modelo",
               "regularized": "porque el modelo está regularizado", "order": "por su posición tras el anterior",
               "none": "sin pista"}
    aspect = {"ex1": "la activación", "ex2": "la inicialización", "ex3": "el optimizador"}
    lines = []
    by_index = {f.index: f for f in fits}
    for fa in out.fits:
        loc = by_index[fa.fit_index].location
        where = place(sub, loc.cell, loc.line)
        target = f"ejercicio {fa.exercise[2:]}" if fa.exercise else "sin ejercicio"
        reason = reasons[fa.source].format(aspect=aspect.get(fa.exercise or "", "un aspecto"))
        label = f" ({fa.label})" if fa.label else ""
        lines.append(f"Entrenamiento {fa.fit_index + 1} ({where}) → {target}{label}, {reason}.")
    if out.final_model_id is not None:
        lines.append(f"Red final: modelo m{out.final_model_id} ({why}).")
    else:
        lines.append("No se ha identificado la red final.")
    return lines
