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
from dataclasses import asdict, dataclass, field
from typing import Any

from grader.capture.trace import ArrayRef, FitRecord, Trace
from grader.load import Submission, exercise_number, markdown_headings
from grader.results import RunResult
from grader.rules.places import place
from grader.source.recognize import fold
from grader.source.static import normalize_activation, normalize_initializer, normalize_optimizer

TEST_ROWS = 10_000  # Fashion-MNIST test size: the fallback when row fingerprints are missing

# Title stems of each exercise (folded), Spanish and English; the rubric may add aliases
# (`exercises.exN.aliases`). Checked in this order: "red final con optimizador Adam" is exercise 4.
_TITLE_STEMS = (
    ("ex4", r"regulari[zs]|red final|modelo final|final (?:model|network)"),
    ("ex3", r"optimi[zs]"),
    ("ex2", r"iniciali|initiali"),
    ("ex1", r"activaci|activation"),
)
_NUMBER = re.compile(r"(?:ejercicio|ejerc|ej|pregunta|apartado|exercise|parte|seccion|section|task)\s*\.?\s*"
                     r"(\d{1,2})(?:\.(\d))?(?![0-9])")
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


@dataclass(frozen=True)
class Numbering:
    """How a hand-in's headings name the exercises: title aliases, and the shift of its numbers
    (an edition whose exercises 1-4 are numbered 9-12 has offset 8)."""

    aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()
    offset: int = 0

    def by_title(self, low: str) -> str | None:
        for exercise, pattern in _TITLE_STEMS:
            extra = dict(self.aliases).get(exercise, ())
            if re.search(pattern, low) or any(a in low for a in extra):
                return exercise
        return None

    def by_number(self, number: int) -> str | None:
        own = number - self.offset
        return f"ex{own}" if 1 <= own <= 4 else None


def numbering_of(sub: Submission, aliases: dict[str, list[str]] | None = None) -> Numbering:
    """The hand-in's numbering, from the headings that carry both a number and a title: when most
    of them agree on one shift, numbers are read through it ("Ejercicio 9" -> ex1); else as written."""
    plain = Numbering(tuple((ex, tuple(fold(a) for a in names)) for ex, names in (aliases or {}).items()))
    offsets: dict[int, int] = {}
    for _idx, _level, text in markdown_headings(sub):
        low = fold(text)
        number, exercise = _number_in(low), plain.by_title(low)
        if number is not None and exercise is not None:
            offset = number - int(exercise[2:])
            offsets[offset] = offsets.get(offset, 0) + 1
    if not offsets:
        return plain
    best = max(offsets, key=lambda o: (offsets[o], o == 0))
    if best != 0 and offsets[best] >= 2 and offsets[best] > offsets.get(0, 0):
        return Numbering(plain.aliases, best)
    return plain


def _number_in(low: str) -> int | None:
    match = _NUMBER.search(low) or re.match(r"\s*(\d{1,2})(?:[.)\s:-]|$)", low)
    return int(match.group(1)) if match else None


def exercise_of_text(text: str | None, numbering: Numbering | None = None) -> str | None:
    """Exercise named by a heading, file or function name; None when it names none. The title
    decides first; a bare number goes through the hand-in's numbering."""
    if not text:
        return None
    numbering = numbering or Numbering()
    low = fold(text)
    if found := numbering.by_title(low):
        return found
    if numbering.offset == 0 and re.search(r"\b4\.[12]\b", low):
        return "ex4"
    match = _NUMBER.search(low) or re.match(r"\s*(?:parte|seccion|apartado)?\s*(\d{1,2})(?:[.)\s:-]|$)", low)
    if match:
        return numbering.by_number(int(match.group(1)))
    number = exercise_number(low.replace(" ", "_"))
    return numbering.by_number(number[0]) if number else None


_MARKER = re.compile(r"^\W*(?:ejercicio|ejerc|ej|pregunta|apartado|exercise|parte)\s*\.?\s*(\d{1,2})(?![0-9])")


def marker_exercise(line: str, numbering: Numbering | None = None) -> str | None:
    """Exercise announced at the start of a comment or prose line: "# Ejercicio 2: ...", "Pregunta 4.2"."""
    match = _MARKER.match(fold(line.strip()))
    return (numbering or Numbering()).by_number(int(match.group(1))) if match else None


def _comment_markers(source: str, numbering: Numbering | None = None) -> list[tuple[int, str]]:
    """(line, exercise) of the comment lines of a code cell that announce an exercise."""
    out = []
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#") and (ex := marker_exercise(stripped.lstrip("#"), numbering)):
            out.append((number, ex))
    return out


def cell_exercises(sub: Submission, numbering: Numbering | None = None) -> dict[int, str | None]:
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
            current = exercise_of_text(file.rsplit("/", 1)[-1], numbering) if named and file else current
        texts = headings.get(cell.index, [])
        found = [ex for text in texts if (ex := exercise_of_text(text, numbering))]
        if numbering and numbering.offset and not found and any(_NUMBER.search(fold(t)) for t in texts):
            current = None  # an exercise of the edition's other lab ("Ejercicio 5" when 9-12 are ours)
        if cell.cell_type == "code":
            found += [ex for _, ex in _comment_markers(cell.source, numbering)]
        if found:
            # A cell that opens with a banner belongs to that exercise; later banners carry on.
            out[cell.index] = found[0]
            current = found[-1]
        else:
            out[cell.index] = current
    return out


def exercise_at(sub: Submission, cell: int | None, line: int | None,
                cells: dict[int, str | None] | None = None, numbering: Numbering | None = None) -> str | None:
    """Exercise of a line of code: the nearest comment banner above it in its cell, else its cell's."""
    if cell is None or not 0 <= cell < len(sub.cells):
        return None
    cells = cells if cells is not None else cell_exercises(sub, numbering)
    markers = [ex for number, ex in _comment_markers(sub.cells[cell].source, numbering) if line is None or number <= line]
    if markers:
        return markers[-1]
    previous = cells.get(cell - 1) if cell > 0 else None
    own = cells.get(cell)
    # The banner of this cell sits below `line`: the code above it still belongs to the previous exercise.
    if _comment_markers(sub.cells[cell].source, numbering) and line is not None:
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


def attribute(sub: Submission, trace: Trace, aliases: dict[str, list[str]] | None = None) -> Attribution:
    """Map every fit of the trace to an exercise and a label, and pick the final model; `aliases`
    are the rubric's extra exercise titles."""
    out = Attribution()
    fits = sorted(trace.fits, key=lambda f: f.index)
    numbering = numbering_of(sub, aliases)
    cells = cell_exercises(sub, numbering)
    chosen: dict[int, tuple[str | None, str]] = {f.index: _from_location(sub, f, cells, numbering) for f in fits}
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


def _from_location(sub: Submission, fit: FitRecord, cells: dict[int, str | None],
                   numbering: Numbering) -> tuple[str | None, str]:
    loc = fit.location
    if loc.section and (ex := exercise_of_text(loc.section, numbering)):
        return ex, "file" if loc.section.lower().endswith(".py") else "heading"
    exercise = exercise_at(sub, loc.cell, loc.line, cells, numbering)
    if exercise:
        source = "file" if loc.cell is not None and sub.cells[loc.cell].origin.file.lower().endswith(".py") \
            and exercise_of_text(sub.cells[loc.cell].origin.file.rsplit("/", 1)[-1], numbering) == exercise else "heading"
        return exercise, source
    if loc.function and (ex := exercise_of_text(loc.function, numbering)):
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
