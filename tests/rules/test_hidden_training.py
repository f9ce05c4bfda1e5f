"""Training outside an open `fit`: fits called through the class, the MRO, `super()` or `getattr`,
`train_on_batch` loops and GradientTape loops. Read from the source (fast tests), recorded by the probe
in a real kernel (marked kernel), and judged like an open fit: hiding a training on the test set never
costs fewer points than doing it with `fit`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.capture import events
from grader.capture.runner import capture_submission
from grader.capture.trace import Location, Trace, TrainStepRecord
from grader.load import Submission
from grader.options import Limits
from grader.pipeline import annotate_rows
from grader.rules import grade, load_rubric
from grader.rules.attribution import attribute
from grader.source.static import analyze
from tests.builders import make_fit, make_trace, notebook, ref

RUBRIC = load_rubric()
PROTOCOL = ("split_20", "no_test_tuning", "fits_recorded")

LOOP_ON_TEST = """\
for epoca in range(3):
    for i in range(0, len(x_test), 32):
        model.train_on_batch(x_test[i:i + 32], y_test[i:i + 32])"""

TAPE_ON_TEST = """\
ds = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(64)
for xb, yb in ds:
    with tf.GradientTape() as tape:
        loss = loss_fn(yb, model(xb, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))"""

TAPE_VALIDATING_ON_TEST = """\
for epoca in range(3):
    for xb, yb in zip(lotes_x, lotes_y):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
    print(model.test_on_batch(x_test, y_test))"""

HONEST_TAPE = """\
x_tr, x_val = x_train[:48000], x_train[48000:]
for epoca in range(3):
    for i in range(0, 48000, 64):
        model.train_on_batch(x_tr[i:i + 64], y_train[i:i + 64])
    print(model.test_on_batch(x_val, y_val))"""


def facts_of(*sources: str) -> dict:
    return analyze(notebook([("code", s) for s in sources], saved=False))


# ------------------------------------------------------------------------------------ source


def test_fits_through_the_class_keep_the_data_arguments_in_place() -> None:
    facts = facts_of("keras.Model.fit(model, x_test, y_test, epochs=1)\n"
                     "type(model).__bases__[0].fit(model, x_test, y_test, validation_split=0.2)\n"
                     "model.__class__.__mro__[1].fit(model, x=x_test, y=y_test)\n"
                     "getattr(model, 'fit')(x_test, y_test, epochs=2)\n"
                     "super(keras.Model, model).fit(x_train, y_train, epochs=1)\n"
                     "model.fit(x_train, y_train, epochs=1)\n"
                     "keras.Model.fit.__wrapped__(model, x_test, y_test, epochs=1)")
    got = [(f["line"], f["target"], f["x"], f["y"], f.get("via")) for f in facts["fits"]]
    assert got == [(1, "model", "x_test", "y_test", "class"), (2, "model", "x_test", "y_test", "class"),
                   (3, "model", "x_test", "y_test", "class"), (4, "model", "x_test", "y_test", "getattr"),
                   (5, "super(keras.Model, model)", "x_train", "y_train", None),
                   (6, "model", "x_train", "y_train", None), (7, "model", "x_test", "y_test", "class")]


def test_train_on_batch_and_gradient_tape_loops_say_what_they_train_on() -> None:
    facts = facts_of("import tensorflow as tf", LOOP_ON_TEST, TAPE_ON_TEST, TAPE_VALIDATING_ON_TEST)
    steps = [(f["cell"], f["line"], f["kind"], f["x"], f["data"], f["validation"]) for f in facts["train_steps"]]
    assert steps[0] == (1, 3, "train_on_batch", "x_test[i:i + 32]", "range(3) ; range(0, len(x_test), 32)", None)
    cell, line, kind, x, data, validation = steps[1]
    assert (cell, line, kind, validation) == (2, 6, "apply_gradients", None)
    assert "xb" in x and "yb" in x  # the forward pass inside the tape block
    assert data == "ds <- tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(64)"
    assert [s[2] for s in steps[2:]] == ["apply_gradients", "test_on_batch"]
    assert steps[2][4] == "range(3) ; zip(lotes_x, lotes_y)" and steps[2][5] == "x_test"


def test_minimize_counts_only_as_tensorflow_spells_it() -> None:
    facts = facts_of("from scipy.optimize import minimize\nres = scipy.optimize.minimize(f, x0)",
                     "opt.minimize(perdida, var_list=model.trainable_variables, tape=cinta)")
    assert [(f["cell"], f["kind"]) for f in facts["train_steps"]] == [(1, "minimize")]


def test_a_batch_sliced_from_a_concatenation_names_what_was_concatenated() -> None:
    facts = facts_of("x_todo = np.concatenate([x_train, x_test])",
                     "for i in range(0, 70000, 32):\n    m.train_on_batch(x_todo[i:i+32], y_todo[i:i+32])")
    assert facts["train_steps"][0]["x"] == "x_todo[i:i+32] <- np.concatenate([x_train, x_test])"


# --------------------------------------------------------------------------------- judging


def _verdicts(cells: list[str], trace: Trace | None = None) -> tuple[dict, float]:
    sub = notebook([("markdown", "# Trabajo 2"), ("code", "import keras\nimport tensorflow as tf\n"
                    "(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()"),
                    *[("code", c) for c in cells]], saved=False)
    trace = trace or make_trace([])
    trace.static = analyze(sub)
    verdicts, _, score, _ = grade(sub, trace, [], RUBRIC, attribute(sub, trace))
    return {v.id: v for v in verdicts}, score


def _deductions(verdicts: dict) -> float:
    return -sum(verdicts[r].points for r in PROTOCOL)


@pytest.mark.parametrize("hidden", [LOOP_ON_TEST, TAPE_ON_TEST, TAPE_VALIDATING_ON_TEST])
def test_hidden_training_on_test_costs_at_least_the_open_fit(hidden: str) -> None:
    build = "model = keras.Sequential([keras.layers.Dense(10)])\nmodel.compile(optimizer='adam', loss='mse')\n"
    open_as_validation = make_fit(0, 1, cell=2, line=3, validation_split=0.0, validation_data=[ref("test", 10_000),
                                                                                            ref("test", 10_000)])
    open_on_test = make_fit(0, 1, cell=2, line=3, x=ref("test", 10_000))
    worst_open = 0.0
    for fit, line in ((open_as_validation, "model.fit(x_train, y_train, validation_data=(x_test, y_test))"),
                      (open_on_test, "model.fit(x_test, y_test, validation_split=0.2)")):
        verdicts, _ = _verdicts([build + line], make_trace([fit]))
        assert verdicts["no_test_tuning"].status == "fail", verdicts["no_test_tuning"]
        worst_open = max(worst_open, _deductions(verdicts))
    verdicts, _ = _verdicts([build + hidden])
    assert verdicts["no_test_tuning"].status == "fail", verdicts["no_test_tuning"].message
    assert verdicts["split_20"].status == "fail", verdicts["split_20"].message
    assert verdicts["suspicious_code"].status == "pass"  # legitimate Keras; the data is what matters
    assert _deductions(verdicts) >= worst_open, (_deductions(verdicts), worst_open)
    assert verdicts["no_test_tuning"].evidence[0].cell == 2


def test_honest_step_loop_with_a_validation_split_is_not_accused() -> None:
    verdicts, _ = _verdicts(["model = keras.Sequential([keras.layers.Dense(10)])", HONEST_TAPE])
    assert verdicts["no_test_tuning"].status == "pass", verdicts["no_test_tuning"].message
    assert verdicts["split_20"].status == "pass", verdicts["split_20"].message


def test_the_real_fit_behind_the_wrapper_is_an_unrecorded_fit_judged_on_its_source() -> None:
    """`keras.Model.fit.__wrapped__(model, ...)` trains for real without replacing anything: no
    tampering to notice, so the source says what ran."""
    verdicts, _ = _verdicts(["model = keras.Sequential([keras.layers.Dense(10)])\n"
                             "keras.Model.fit.__wrapped__(model, x_test, y_test, epochs=1)"])
    assert verdicts["fits_recorded"].status == "fail", verdicts["fits_recorded"].message
    assert verdicts["no_test_tuning"].status == "fail" and "celda 3, línea 2" in verdicts["no_test_tuning"].message


def test_steps_that_certainly_ran_but_were_never_recorded_fail_fits_recorded() -> None:
    build = "model = keras.Sequential([keras.layers.Dense(10)])\n"
    loop = "for i in range(0, 2000, 64):\n    keras.Model.train_on_batch.__wrapped__(model, x_train[i:i+64], y)"
    verdicts, _ = _verdicts([build + loop])
    fits = verdicts["fits_recorded"]
    assert fits.status == "fail" and fits.message.startswith(
        "En la celda 3, línea 3 se entrena con `train_on_batch`, pero esos pasos"), fits.message
    assert fits.evidence[0].cell == 2 and "__wrapped__" in fits.evidence[0].excerpt
    assert verdicts["split_20"].status == "fail"  # no validation in that loop: judged like fit(x, y)
    recorded = TrainStepRecord(kind="train_on_batch", model_id=1, steps=32, location=Location(cell=2, line=3))
    verdicts, _ = _verdicts([build + loop], Trace(student="s", train_steps=[recorded]))
    assert verdicts["fits_recorded"].status == "pass"
    # a loop over data of unknown length is not certain to run: no accusation
    verdicts, _ = _verdicts([build + "for xb, yb in lotes:\n    model.train_on_batch(xb, yb)"])
    assert verdicts["fits_recorded"].status == "pass"


def test_suspicious_code_flags_steps_only_when_the_rubric_lists_them() -> None:
    from grader.source.suspicious import SuspiciousPatterns, find_suspicious

    sub = notebook([("code", "import tensorflow as tf"), ("code", LOOP_ON_TEST), ("code", TAPE_ON_TEST)], saved=False)
    params = dict(RUBRIC.rules["suspicious_code"].params)
    assert find_suspicious(sub, SuspiciousPatterns.from_params(params)) == []
    params["calls"] = [*params["calls"], "*.train_on_batch", "tensorflow.GradientTape"]  # imports resolved
    found = find_suspicious(sub, SuspiciousPatterns.from_params(params))
    assert [(f["cell"], f["line"], f["found"]) for f in found] == [
        (1, 3, "model.train_on_batch"), (2, 3, "tensorflow.GradientTape")], found


def test_recorded_steps_on_test_rows_fail_even_when_the_source_hides_the_data() -> None:
    """exec'd code: no static fact, only the probe's record with its batches' rows."""
    step = TrainStepRecord(kind="train_on_batch", model_id=1, steps=40, x=[ref("test", 32)],
                           source=ref("test", 10_000), location=Location(cell=2, line=1))
    verdicts, _ = _verdicts(["exec(codigo)"], Trace(student="s", train_steps=[step]))
    assert verdicts["no_test_tuning"].status == "fail"
    assert "(1280 filas)" in verdicts["no_test_tuning"].message  # 40 steps of 32 test rows
    assert verdicts["split_20"].status == "fail"


def test_a_claim_printed_after_the_final_fit_is_compared_with_the_retrain() -> None:
    """A forged number read back from a file the hand-in wrote, printed in a later cell."""
    from dataclasses import replace

    from tests.builders import final_run, standard_cells, standard_trace

    cells = [*standard_cells(), ("code", "print('val_accuracy:', json.load(open('history.json'))['val'])")]
    forged = len(cells) - 1
    claim = {forged: [{"output_type": "stream", "name": "stdout", "text": "val_accuracy: 0.99\n"}]}
    sub = notebook(cells, outputs=claim)
    runs = [final_run(val=0.89)]
    verdicts, *_ = grade(sub, trace := standard_trace(), runs, RUBRIC, attribute(sub, trace))
    claimed = next(v for v in verdicts if v.id == "reported_vs_reproduced")
    assert claimed.status == "warn" and claimed.evidence[0].cell == forged, claimed.message
    assert "99.00%" in claimed.message and "89.00%" in claimed.message
    honest = {forged: [{"output_type": "stream", "name": "stdout", "text": "val_accuracy: 0.88\n"}]}
    sub = notebook(cells, outputs=honest)
    verdicts, *_ = grade(sub, trace := standard_trace(), runs, RUBRIC, attribute(sub, trace))
    assert next(v for v in verdicts if v.id == "reported_vs_reproduced").status == "pass"
    # A retrain shortened (quick mode) reproduces lower numbers: later claims are not held against it.
    sub = notebook(cells, outputs=claim)
    short = [replace(final_run(val=0.80), epochs_requested=3)]
    verdicts, *_ = grade(sub, trace := standard_trace(), short, RUBRIC, attribute(sub, trace))
    assert next(v for v in verdicts if v.id == "reported_vs_reproduced").status == "skip"


def test_train_step_events_are_validated_and_merged(tmp_path: Path) -> None:
    sub = notebook([("code", "x = 1"), ("code", "y = 2")], saved=False)
    arr = {"digest": "a" * 64, "shape": [32, 28, 28], "dtype": "<f4", "stored": False}
    good = {"event": "train_step", "kind": "train_on_batch", "model_id": 3, "steps": 1, "x": [arr],
            "source": None, "location": {"cell": 1, "line": 2, "function": None}}
    lines = [good, dict(good, steps=7, x=[dict(arr, digest="b" * 64)]),
             dict(good, kind="fit_everything"), dict(good, model_id=-1), dict(good, steps=0),
             dict(good, x=[arr] * 9), dict(good, location={"cell": 99, "line": 10**9}, kind="apply_gradients")]
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "events.jsonl").write_text("\n".join(__import__("json").dumps(e) for e in lines))
    trace = Trace(student="s")
    events.assemble(trace, sub, tmp_path / "events", tmp_path / "out", 10**6)
    merged, odd = trace.train_steps
    assert (merged.kind, merged.model_id, merged.steps, [r.digest[0] for r in merged.x]) == (
        "train_on_batch", 3, 7, ["a", "b"])
    assert (odd.location.cell, odd.location.line) == (None, None)  # out of range: dropped, not trusted
    assert any("4 malformed event line(s)" in m for m in trace.messages), trace.messages
    assert any("not replayed by the retrain" in m for m in trace.messages)


# ------------------------------------------------------------------------------ real kernel

KERNEL_IMPORTS = """\
import numpy as np
import keras
import tensorflow as tf
from keras.datasets import fashion_mnist
from keras.models import Sequential
from keras.layers import Dense, Flatten, Input

(x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
x_train = x_train[:1000] / 255.0
y_train = y_train[:1000]
x_test = x_test / 255.0
def crear():
    m = Sequential([Input((28, 28)), Flatten(), Dense(16, activation='relu'), Dense(10, activation='softmax')])
    m.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    return m"""

KERNEL_CELLS = [
    ("markdown", "# Trabajo 2"),  # 0
    ("code", KERNEL_IMPORTS),  # 1
    ("code", "a = crear()\nh = type(a).__mro__[1].fit(a, x_test[:500], y_test[:500], epochs=1, verbose=0)\n"
             "print(h.history['loss'])"),  # 2
    ("code", "b = crear()\nsuper(keras.Model, b).fit(x_train, y_train, validation_data=(x_test, y_test), epochs=1)\n"
             "getattr(b, 'fit')(x_train, y_train, validation_split=0.2, epochs=1, verbose=0)"),  # 3
    ("code", "c = crear()\nfor epoca in range(2):\n    for i in range(0, 320, 32):\n"
             "        r = c.train_on_batch(x_test[i:i + 32], y_test[i:i + 32])\nprint(r)"),  # 4
    ("code", "d = crear()\nopt = keras.optimizers.Adam()\nloss_fn = keras.losses.SparseCategoricalCrossentropy()\n"
             "ds = tf.data.Dataset.from_tensor_slices((x_test[:256].astype('float32'), y_test[:256])).batch(64)\n"
             "for xb, yb in ds:\n    with tf.GradientTape() as tape:\n"
             "        loss = loss_fn(yb, d(xb, training=True))\n"
             "    grads = tape.gradient(loss, d.trainable_variables)\n"
             "    opt.apply_gradients(zip(grads, d.trainable_variables))\nprint(float(loss))"),  # 5
]


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Submission, Trace]:
    out = tmp_path_factory.mktemp("hidden_training")
    sub = notebook(KERNEL_CELLS, saved=False)
    trace = capture_submission(sub, out, limits=Limits(cell_timeout_s=120, total_timeout_s=400, memory_mb=3000))
    trace.static = analyze(sub)
    annotate_rows(trace, out / "arrays", None)
    return sub, trace


@pytest.mark.kernel
def test_probe_records_fits_through_the_bases_and_steps_outside_fit(captured: tuple[Submission, Trace]) -> None:
    _sub, trace = captured
    assert trace.status == "ok" and not trace.errors, (trace.errors, trace.messages)
    fits = [(f.location.cell, f.location.line, f.x.rows["test"]) for f in trace.fits]
    assert fits == [(2, 2, 500), (3, 2, 0), (3, 3, 0)]  # __mro__[1].fit, super(keras.Model, b).fit, getattr
    assert trace.fits[1].validation_data[0].rows["test"] == 10_000
    assert not trace.tamperings  # the wrappers on the trainer bases are the probe's own
    steps = {s.kind: s for s in trace.train_steps}
    loop = steps["train_on_batch"]
    assert (loop.location.cell, loop.location.line, loop.steps) == (4, 4, 20)
    assert [r.rows["test"] for r in loop.x] == [32] * 5  # steps 1, 2, 4, 8, 16
    assert loop.source.rows["test"] == 10_000  # the batches are views of x_test
    tape = steps["apply_gradients"]
    assert (tape.location.cell, tape.steps, tape.model_id) == (5, 4, loop.model_id + 1)
    assert [r.rows["test"] for r in tape.x] == [64, 64, 64]  # steps 1, 2, 4: d(xb) before each


@pytest.mark.kernel
def test_recorded_hidden_trainings_fail_like_open_ones(captured: tuple[Submission, Trace]) -> None:
    sub, trace = captured
    verdicts, *_ = grade(sub, trace, [], RUBRIC, attribute(sub, trace))
    v = {x.id: x for x in verdicts}
    assert v["no_test_tuning"].status == "fail" and "celda 3, línea 2" in v["no_test_tuning"].message
    assert v["split_20"].status == "fail"
    assert {ev.cell for ev in v["split_20"].evidence} >= {2, 3, 4, 5}
    assert v["fits_recorded"].status == "pass", v["fits_recorded"].message


def test_train_steps_round_trip_through_the_trace_json() -> None:
    step = TrainStepRecord(kind="apply_gradients", model_id=None, steps=3, x=[ref("test", 64)],
                           source=ref("train", 48_000), location=Location(cell=4, line=9, function="paso"))
    trace = Trace(student="s", train_steps=[step])
    again = Trace.from_json(trace.to_json())
    assert again.train_steps == [step] and again.schema_version == 3
    stale = trace.to_json().replace('"schema_version": 3', '"schema_version": 2')
    with pytest.raises(ValueError, match="capture the hand-in again"):
        Trace.from_json(stale)
