"""Hidden fits: fit calls that certainly ran but never reached the probe, and probe tampering.

A real kernel runs a hand-in that puts the real `keras.Model.fit` back (the "probe_restore_fit"
attack) next to honest helper functions; synthetic cells check which fit calls count as certain.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.capture import events
from grader.capture.runner import capture_submission
from grader.capture.trace import CellError, HiddenFailure, Location, Trace
from grader.load import Submission
from grader.options import Limits
from grader.pipeline import annotate_rows
from grader.rules import grade, load_rubric
from grader.rules.attribution import attribute
from grader.rules.integrity import completed_cells, unrecorded_fits
from grader.source.fit_sites import expected_fits
from grader.source.static import analyze
from tests.adversarial.attacks import ATTACKS
from tests.builders import make_fit, make_trace, notebook

RUBRIC = load_rubric()

IMPORTS = """\
import numpy as np
import keras
from keras.datasets import fashion_mnist
from keras.models import Sequential
from keras.layers import Dense, Flatten

(x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
x_train = x_train[:1000] / 255.0
y_train = y_train[:1000]
x_test = x_test / 255.0"""

HELPERS = """\
def crear_modelo():
    modelo = Sequential([Flatten(input_shape=(28, 28)), Dense(16, activation='relu'),
                         Dense(10, activation='softmax')])
    modelo.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    return modelo

def entrenar(modelo):
    return modelo.fit(x_train, y_train, validation_split=0.2, epochs=1, batch_size=128, verbose=0)

def nunca_llamada(modelo):
    return modelo.fit(x_train, y_train, validation_data=(x_test, y_test), epochs=1)"""

# The attack of the adversarial suite, verbatim: restore the real fit, forget the probe, train a
# new model validating on the test set. Fit at line 13, Sequential(...) at 10, restore at 7.
RESTORE_NEW_MODEL = ATTACKS["probe_restore_fit"][0]

# The same, on a model that already exists: no Keras call between the restore and the fit.
RESTORE_EXISTING_MODEL = """\
keras.Model.fit = original
h2 = modelo.fit(x_train[:200], y_train[:200], validation_data=(x_test, y_test), epochs=1, verbose=0)
print('entrenado de verdad:', len(h2.history['loss']))"""

# A subclass attribute shadows Model.fit just as well; the next Keras call (crear_modelo) undoes it.
AFTER = """\
Sequential.fit = keras.Model.fit.__wrapped__
otro = crear_modelo()
h3 = entrenar(otro)"""

REMOVE_PROBE = """\
import builtins, sys
for nombre in [m for m in sys.modules if 'probe' in m]:
    del sys.modules[nombre]
del builtins.__grader_probe_live__"""

ATTACK_CELLS = [
    ("markdown", "# Trabajo 2: Aspectos prácticos de las redes neuronales"),  # 0
    ("code", IMPORTS),  # 1
    ("markdown", "## 1. Unidades de activación"),  # 2
    ("code", HELPERS),  # 3
    ("code", "%%time\nmodelo = crear_modelo()\nhistoria = entrenar(modelo)"),  # 4: honest fit via a helper
    ("code", RESTORE_NEW_MODEL),  # 5
    ("code", RESTORE_EXISTING_MODEL),  # 6
    ("code", AFTER),  # 7: recorded again after the re-patch, from a freshly imported probe module
    ("code", REMOVE_PROBE),  # 8
    ("code", "print('fin')"),  # 9
]


def _grade(sub: Submission, trace: Trace) -> dict:
    trace.static = trace.static or analyze(sub)
    verdicts, *_ = grade(sub, trace, [], RUBRIC, attribute(sub, trace))
    return {v.id: v for v in verdicts}


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Submission, Trace, Path]:
    out = tmp_path_factory.mktemp("restore_fit")
    sub = notebook(ATTACK_CELLS, saved=False)
    trace = capture_submission(sub, out, limits=Limits(cell_timeout_s=60, total_timeout_s=240, memory_mb=3000))
    trace.static = analyze(sub)
    annotate_rows(trace, out / "arrays", None)
    return sub, trace, out


@pytest.mark.kernel
def test_restored_fit_is_reported_and_the_probe_patches_itself_back(
        attacked: tuple[Submission, Trace, Path]) -> None:
    _sub, trace, out = attacked
    assert trace.status == "ok" and not trace.errors, (trace.errors, trace.messages)
    found = events.tamperings(trace)
    # Cell 5: noticed by the Model.__init__ wrapper of Sequential(...), line 10; cell 6: by the evaluate
    # wrapper that the real fit calls for its validation data (line 2); cell 8: the probe removed.
    located = [(t.cell, t.line, t.replaced) for t in found if t.cell is not None]
    assert located == [(5, 10, ("Model.fit",)), (6, 2, ("Model.fit",)), (7, 2, ("Sequential.fit",))], trace.messages
    assert [(t.before, t.replaced) for t in found if t.cell is None] == [(9, ("grader_probe",))]
    # Re-patched in cell 5 before its fit, so that fit is recorded; cell 6's fit trained for real.
    where = [(f.location.cell, f.location.line, f.location.function) for f in trace.fits]
    assert where == [(4, 1, "entrenar"), (5, 13, None), (7, 3, "entrenar")]  # %%time: line 1
    assert not trace.failed_fits and not any("probe note" in m for m in trace.messages)
    executed = json.loads((out / "executed.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for o in executed["cells"][6].get("outputs", []))
    assert "entrenado de verdad: 1" in printed, executed["cells"][6].get("outputs")


@pytest.mark.kernel
def test_rules_fail_the_hidden_fit_and_the_test_set_as_validation(
        attacked: tuple[Submission, Trace, Path]) -> None:
    sub, trace, _ = attacked
    hidden = unrecorded_fits(sub, trace, trace.static)
    assert [(u.fact["cell"], u.fact["line"], u.function) for u in hidden] == [(6, 2, None)]
    v = _grade(sub, trace)
    fits = v["fits_recorded"]
    assert fits.status == "fail" and fits.severity == "error"
    assert fits.message.startswith("En la celda 7, línea 2 se llama a `fit`"), fits.message
    assert "keras.Model.fit" in fits.message and "Model.fit" in fits.message
    assert fits.evidence[0].cell == 6 and fits.evidence[0].excerpt.startswith("h2 = modelo.fit(")
    # the replacements, at the line that assigns (the probe noticed them at a later Keras call)
    assert [(ev.cell, ev.line, ev.excerpt) for ev in fits.evidence[1:3]] == [
        (5, 7, "keras.Model.fit = original"), (6, 1, "keras.Model.fit = original")]
    assert ("Además, el código sustituyó `keras.Model.fit`, `keras.Sequential.fit` y el módulo del corrector "
            "(`grader_probe`) (celda 6, línea 7)") in fits.message
    assert fits.points == -RUBRIC.rules["fits_recorded"].deduction["fail"]
    split = v["split_20"]
    assert split.status == "fail" and "conjunto de test" in split.message
    assert {ev.cell for ev in split.evidence} == {5, 6}  # the recorded one (5) and the hidden one (6)
    assert v["no_test_tuning"].status == "fail"


# ---------------------------------------------------------------------------- synthetic cells

BUILD = ("model = Sequential([Dense(10)])\n"
         "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n")


def _hidden(cells: list[tuple[str, str]], fits: list, **trace_kw) -> list[tuple[int, int, str | None]]:
    sub = notebook([("markdown", "# Trabajo 2"), *cells], saved=False)
    trace = make_trace(fits, **trace_kw)
    return [(u.fact["cell"], u.fact["line"], u.function) for u in unrecorded_fits(sub, trace, analyze(sub))]


def _fit(index: int, cell: int, line: int, function: str | None = None):
    fit = make_fit(index, index + 1, cell=cell, line=line)
    fit.location = Location(cell=cell, line=line, function=function)
    return fit


def test_helper_called_from_another_cell_matches_its_recorded_fit() -> None:
    cells = [("code", "def entrenar(m):\n    m.compile(optimizer='adam')\n    return m.fit(x, y, epochs=2)"),
             ("code", "h = entrenar(crear())\nh2 = entrenar(crear())")]
    assert _hidden(cells, [_fit(0, 2, 1, "entrenar"), _fit(1, 2, 2, "entrenar")]) == []
    # the second call left no record: the fit inside entrenar() is reported, called from cell 2 line 2
    sub = notebook([("markdown", "# T"), *cells], saved=False)
    trace = make_trace([_fit(0, 2, 1, "entrenar")])
    (hidden,) = unrecorded_fits(sub, trace, analyze(sub))
    assert (hidden.fact["cell"], hidden.fact["line"], hidden.cell, hidden.line, hidden.function) == (1, 3, 2, 2, "entrenar")


def test_functions_never_called_or_not_certainly_called_expect_nothing() -> None:
    helper = "def entrenar(m):\n    return m.fit(x, y, epochs=2)\n"
    assert _hidden([("code", helper)], []) == []  # defined, never called
    assert _hidden([("code", helper), ("code", "if usar:\n    entrenar(m)")], []) == []
    assert _hidden([("code", helper), ("code", "hs = [entrenar(m) for m in modelos]")], []) == []
    assert _hidden([("code", helper), ("code", "h = entrenar(m) if usar else None")], []) == []
    early = "def entrenar(m):\n    if ya:\n        return None\n    return m.fit(x, y, epochs=2)\n"
    assert _hidden([("code", early), ("code", "entrenar(m)")], []) == []
    generator = "def entrenar(m):\n    yield m.fit(x, y, epochs=2)\n"
    assert _hidden([("code", generator), ("code", "entrenar(m)")], []) == []
    rebound = "from utils import entrenar"  # the name no longer holds the def
    assert _hidden([("code", helper), ("code", rebound), ("code", "entrenar(m)")], []) == []
    assert _hidden([("code", helper), ("code", "entrenar(m)")], []) == [(1, 2, "entrenar")]


def test_conditional_and_non_keras_fits_expect_nothing() -> None:
    for source in (BUILD + "if quiero:\n    model.fit(x, y, epochs=1)",
                   BUILD + "try:\n    model.fit(x, y, epochs=1)\nexcept Exception:\n    pass",
                   BUILD + "while seguir:\n    model.fit(x, y, epochs=1)",
                   BUILD + "for cfg in []:\n    model.fit(x, y, epochs=1)",
                   BUILD + "for cfg in configs:\n    model.fit(x, y, epochs=1)",  # configs: unknown
                   "scaler = StandardScaler()\nscaler.fit(x)",
                   "datagen.fit(x_train)"):
        assert _hidden([("code", source)], []) == [], source
    assert _hidden([("code", BUILD + "model.fit(x, y)")], []) == [(1, 3, None)]  # compiled: Keras
    loops = BUILD + "for act in ['relu', 'sigmoid']:\n    model.fit(x, y, epochs=1)"
    assert _hidden([("code", loops)], []) == [(1, 4, None)]
    assert _hidden([("code", loops)], [_fit(0, 1, 4)]) == []  # one record is enough for a loop
    named = "configs = ['relu', 'sigmoid']\n" + BUILD + "for cfg in configs:\n    model.fit(x, y, epochs=1)"
    assert _hidden([("code", named)], []) == [(1, 5, None)]
    main = BUILD + "if __name__ == '__main__':\n    model.fit(x, y, epochs=1)"
    assert _hidden([("code", main)], []) == [(1, 4, None)]


def test_cells_that_failed_or_never_ran_expect_nothing() -> None:
    cells = [("code", BUILD + "model.fit(x, y, epochs=1)"), ("code", BUILD + "model.fit(x, y, epochs=1)")]
    assert _hidden(cells, []) == [(1, 3, None), (2, 3, None)]
    assert _hidden(cells, [], errors=[CellError(cell=1, ename="NameError", evalue="x")]) == [(2, 3, None)]
    stopped = [CellError(cell=1, ename="Timeout", evalue="total time limit of 900 s exceeded")]
    assert _hidden(cells, [], status="timeout", errors=stopped) == []
    assert _hidden(cells, [], status="kernel_died") == []  # no timing note, no stop cell: nothing known
    trace = make_trace([], status="kernel_died", errors=[])
    trace.cells_started = [1, 2]
    sub = notebook([("markdown", "# T"), *cells], saved=False)
    assert completed_cells(sub, trace) == {1}  # the dead kernel was running cell 2
    # Locations the probe could not place: a busy kernel missed at_cell(2); the probe never started.
    trace = make_trace([])
    trace.hidden_failures.append(HiddenFailure(step="at_cell", cell=2, ename="GraderCellTimeout"))
    assert completed_cells(sub, trace) == {1}
    trace.hidden_failures.append(HiddenFailure(step="install", cell=None, ename="ModuleNotFoundError"))
    assert completed_cells(sub, trace) == set()


def test_time_magic_cells_are_recorded_at_the_magic_line() -> None:
    cells = [("code", "%%time\n" + BUILD + "model.fit(x, y, epochs=1)")]
    assert _hidden(cells, [_fit(0, 1, 1)]) == []
    sub = notebook([("markdown", "# T"), *cells], saved=False)
    (exp,) = expected_fits(sub, {1}, analyze(sub))
    assert (exp.first_line, exp.last_line) == (1, 4)


def test_tamper_events_are_read_defensively(tmp_path: Path) -> None:
    sub = notebook([("markdown", "# T"), ("code", "x = 1"), ("code", "y = 2")], saved=False)
    lines = [{"event": "tamper", "detected": "call", "cell": 2, "line": 1, "before": None,
              "replaced": ["Model.fit", "Sequential.fit"]},
             {"event": "tamper", "cell": 99, "line": -5, "replaced": ["Model.evaluate"]},  # out of range
             {"event": "tamper", "cell": 1, "replaced": ["../../etc; rm -rf"]},  # not a method name
             {"event": "tamper", "cell": 1, "replaced": "Model.fit"}]  # not a list
    (tmp_path / "events.jsonl").write_text("\n".join(json.dumps(e) for e in lines) + "\n")
    trace = Trace(student="s")
    trace.hidden_failures.append(HiddenFailure(step="at_cell", cell=2, ename="GraderProbeLost"))
    events.assemble(trace, sub, tmp_path, tmp_path / "out", 10_000)
    assert any("2 malformed event line(s)" in m for m in trace.messages), trace.messages
    found = events.tamperings(trace)
    assert [(t.cell, t.line, t.replaced, t.before) for t in found] == [
        (None, None, ("grader_probe",), 2), (2, 1, ("Model.fit", "Sequential.fit"), None),
        (None, None, ("Model.evaluate",), None)]
    v = _grade(sub, trace)
    assert v["fits_recorded"].status == "fail" and "Model.fit" in v["fits_recorded"].message


def test_a_fit_the_probe_failed_to_record_is_not_a_hidden_fit(tmp_path: Path) -> None:
    cells = [("markdown", "# T"), ("code", BUILD + "model.fit(x, y, epochs=1)"), ("code", "print(1)")]
    sub = notebook(cells, saved=False)
    failed = {"event": "fit_failed", "location": {"cell": 1, "line": 3, "function": None}}
    forged = {"event": "fit_failed", "location": {"cell": "1; rm", "line": 3}}  # not a Location
    (tmp_path / "events.jsonl").write_text(json.dumps(failed) + "\n" + json.dumps(forged) + "\n")
    trace = Trace(student="s")
    events.assemble(trace, sub, tmp_path, tmp_path / "out", 10_000)
    assert trace.failed_fits == [Location(cell=1, line=3, function=None)]
    assert any("1 malformed event line(s)" in m for m in trace.messages), trace.messages
    assert unrecorded_fits(sub, trace, analyze(sub)) == []
    assert unrecorded_fits(sub, Trace(student="s"), analyze(sub)) != []  # without the note: hidden
