"""Each rule on synthetic pass/fail cases, and grade() end to end on synthetic traces."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from grader.capture.trace import CellError, Trace
from grader.load import load_submission
from grader.rules import RULES, grade, load_rubric
from grader.rules.attribution import attribute
from tests.builders import (
    ANALYSIS,
    FINAL_ID,
    ROOT,
    final_run,
    make_eval,
    make_fit,
    make_trace,
    mlp,
    notebook,
    ref,
    replace_fit,
    run_rules,
    standard,
    standard_cells,
    standard_fits,
    standard_trace,
)

RUBRIC = load_rubric()


def test_correct_hand_in_gets_full_marks():
    verdicts, total = run_rules(*standard())
    bad = {k: (v.status, v.message) for k, v in verdicts.items() if v.status not in ("pass", "skip")}
    assert bad == {}
    assert total == 10.0
    assert verdicts["outputs_saved"].status == "pass" and verdicts["execution_order"].status == "pass"


# ---------------------------------------------------------------- protocol

def test_split_20_fails_on_test_as_validation_and_cites_the_cell():
    sub, trace = standard()
    replace_fit(trace, 2, validation_split=0.0, validation_data=[ref("test", 10_000), ref("test", 10_000)])
    v, _ = run_rules(sub, trace)
    assert v["split_20"].status == "fail"
    assert "celda 8, línea 6" in v["split_20"].message and "test" in v["split_20"].message
    assert v["split_20"].evidence[0].excerpt.startswith("history = model.fit(")
    assert v["split_20"].points == -RUBRIC.rules["split_20"].deduction["fail"]
    assert v["no_test_tuning"].status == "fail"


def test_split_20_wrong_fraction_and_missing_validation():
    sub, trace = standard()
    replace_fit(trace, 0, validation_split=0.1)
    v, _ = run_rules(sub, trace)
    assert v["split_20"].status == "fail" and "10%" in v["split_20"].message
    sub, trace = standard()
    replace_fit(trace, 0, validation_split=0.0)
    v, _ = run_rules(sub, trace)
    assert v["split_20"].status == "fail" and "no usa conjunto de validación" in v["split_20"].message


def test_split_20_accepts_a_manual_80_20_split_of_train_rows():
    sub, trace = standard()
    replace_fit(trace, 0, validation_split=0.0, x=ref("train", 48_000),
                validation_data=[ref("train", 12_000), ref("train", 12_000)])
    v, _ = run_rules(sub, trace)
    assert v["split_20"].status == "pass"
    replace_fit(trace, 0, validation_split=0.0, x=ref("train", 54_000),
                validation_data=[ref("train", 6_000), ref("train", 6_000)])
    v, _ = run_rules(sub, trace)
    assert v["split_20"].status == "fail" and "10%" in v["split_20"].message


def test_new_model_per_fit_cites_the_refit():
    sub, trace = standard()
    trace.fits[6] = make_fit(6, 6, optimizer="Adam", cell=13, line=6, prior_fits=1)  # same object as the SGD fit
    v, _ = run_rules(sub, trace)
    assert v["new_model_per_fit"].status == "fail"
    assert "celda 14, línea 6" in v["new_model_per_fit"].message
    assert v["new_model_per_fit"].evidence[0].cell == 13


def _adam_refits_the_sgd_model() -> list[tuple[str, str]]:
    """The standard hand-in whose Adam cell (13) compiles and fits the SGD cell's model again."""
    cells = standard_cells()
    cells[13] = ("code", "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n"
                         "history = model.fit(x_train, y_train, epochs=3, batch_size=128, validation_split=0.2)")
    return cells


def test_new_model_per_fit_reads_a_refit_from_the_code_when_nothing_was_recorded():
    for trace in (Trace(student="s", status="not_run"), make_trace([], status="ok")):  # never ran / no fit recorded
        v, _ = run_rules(notebook(_adam_refits_the_sgd_model()), trace, runs=[])
        verdict = v["new_model_per_fit"]
        assert (verdict.status, verdict.key) == ("fail", "fail_source")
        assert "En la celda 14, línea 2 se vuelve a llamar a `fit` sobre `model`" in verdict.message
        assert "ya se entrenó en la celda 13, línea 6" in verdict.message and "Se ha leído del código" in verdict.message
        assert [(e.cell, e.line) for e in verdict.evidence] == [(13, 2), (12, 6)]
        assert verdict.points == -RUBRIC.rules["new_model_per_fit"].deduction["fail"]


def test_new_model_per_fit_reads_a_loop_that_refits_from_the_code():
    cells = standard_cells()
    cells[12] = ("code", "model = Sequential([Flatten(input_shape=(28, 28)), Dense(10, activation='softmax')])\n"
                         "for opt in ['sgd', 'adam', 'rmsprop']:\n"
                         "    model.compile(optimizer=opt, loss='sparse_categorical_crossentropy')\n"
                         "    model.fit(x_train, y_train, epochs=3, validation_split=0.2)")
    v, _ = run_rules(notebook(cells), Trace(student="s", status="not_run"), runs=[])
    verdict = v["new_model_per_fit"]
    assert (verdict.status, verdict.key) == ("fail", "fail_source_loop")
    assert "En la celda 13, línea 4, dentro de un bucle" in verdict.message and "`model`" in verdict.message
    assert [(e.cell, e.line) for e in verdict.evidence] == [(12, 4)]


def test_new_model_per_fit_from_a_markdown_export_of_the_answers(tmp_path: Path):
    fence = "```"
    text = "\n\n".join(src if kind == "markdown" else f"{fence}python\n{src}\n{fence}"
                       for kind, src in _adam_refits_the_sgd_model())
    (tmp_path / "respuestas.md").write_text(text + "\n", encoding="utf-8")
    sub = load_submission(tmp_path / "respuestas.md")
    assert sub.kind == "md"
    sgd = next(c.number for c in sub.code_cells if "optimizer='sgd'" in c.source)
    adam = next(c.number for c in sub.code_cells if c.source.startswith("model.compile(optimizer='adam'"))
    v, _ = run_rules(sub, Trace(student="s", status="not_run"), runs=[])
    assert v["new_model_per_fit"].key == "fail_source"
    assert f"En la celda {adam}, línea 2" in v["new_model_per_fit"].message
    assert f"ya se entrenó en la celda {sgd}, línea 6" in v["new_model_per_fit"].message


def test_new_model_per_fit_keeps_silence_a_skip_and_trusts_a_recorded_trace():
    v, _ = run_rules(notebook(standard_cells()), Trace(student="s", status="not_run"), runs=[])
    assert v["new_model_per_fit"].status == "skip"  # no repeat in the code proves no new model either
    # The trace recorded the fits: it decides, whatever the source looks like.
    v, _ = run_rules(notebook(_adam_refits_the_sgd_model()), standard_trace())
    assert (v["new_model_per_fit"].status, v["new_model_per_fit"].key) == ("pass", "pass")
    trace = standard_trace()
    trace.fits[6] = make_fit(6, 6, optimizer="Adam", cell=13, line=2, prior_fits=1)
    v, _ = run_rules(notebook(_adam_refits_the_sgd_model()), trace)
    assert (v["new_model_per_fit"].status, v["new_model_per_fit"].key) == ("fail", "fail")
    assert "1 `fit` previo(s)" in v["new_model_per_fit"].message


def test_no_test_tuning_cases():
    sub, trace = standard()
    replace_fit(trace, 1, x=ref("x", 70_000, rows={"train": 60_000, "test": 10_000}))
    v, _ = run_rules(sub, trace)
    assert v["no_test_tuning"].status == "fail" and "10000 filas" in v["no_test_tuning"].message

    sub, trace = standard()
    replace_fit(trace, 8, validation_split=0.0, validation_data=[ref("test", 10_000), ref("test", 10_000)])
    v, _ = run_rules(sub, trace)
    assert v["no_test_tuning"].status == "fail" and "EarlyStopping" in v["no_test_tuning"].message

    sub, trace = standard()
    trace.evals += [make_eval(1, cell=3, line=7), make_eval(2, cell=4, line=7)]
    v, _ = run_rules(sub, trace)
    assert v["no_test_tuning"].status == "warn"
    assert "celda 4, línea 7" in v["no_test_tuning"].message and "3 evaluaciones" in v["no_test_tuning"].message


# ---------------------------------------------------------------- exercises

def test_ex1_missing_sigmoid_and_shallow_network():
    sub, trace = standard()
    trace.fits[0] = make_fit(0, 1, mlp(("tanh", "tanh")), cell=3, line=6)
    v, _ = run_rules(sub, trace)
    assert v["ex1_activations"].status == "fail" and "sigmoide" in v["ex1_activations"].message
    assert v["ex1_activations"].points == 0

    sub, trace = standard()
    trace.fits[0] = make_fit(0, 1, mlp(("sigmoid",), units=(64,)), cell=3, line=6)
    trace.fits[1] = make_fit(1, 2, mlp(("relu",), units=(64,)), cell=4, line=6)
    v, _ = run_rules(sub, trace)
    assert v["ex1_activations"].status == "warn" and "2 capas densas" in v["ex1_activations"].message
    assert 0 < v["ex1_activations"].points < 2.5


def test_ex2_uniform_labelled_normal_is_called_out():
    cells = standard_cells()
    cells[8] = ("code", cells[8][1].replace("random_normal", "random_uniform"))
    sub = notebook(cells)
    trace = standard_trace()
    trace.fits[3] = make_fit(3, 4, mlp(init="random_uniform"), cell=8, line=6)
    v, _ = run_rules(sub, trace)
    verdict = v["ex2_initializers"]
    assert verdict.status == "fail"
    assert "UNIFORME" in verdict.message and "random_uniform" in verdict.message and "celda 9" in verdict.message
    assert verdict.points == pytest.approx(2.5 * 2 / 3, abs=1e-3)


def test_ex3_needs_sgd_and_several_adaptive():
    sub, trace = standard()
    trace.fits[5] = make_fit(5, 6, optimizer="Adamax", cell=12, line=6)
    v, _ = run_rules(sub, trace)
    assert v["ex3_optimizers"].status == "fail" and "SGD" in v["ex3_optimizers"].message
    sub, trace = standard()
    trace.fits[7] = make_fit(7, 8, optimizer="SGD", cell=14, line=6)
    v, _ = run_rules(sub, trace)
    assert v["ex3_optimizers"].status == "warn" and "1 optimizador" in v["ex3_optimizers"].message


def test_ex4_final_without_regularisation_and_test_evaluations():
    sub, trace = standard()
    trace.fits[8] = make_fit(8, FINAL_ID, mlp(("relu",), units=(512,)), cell=17, line=5, epochs=20)
    v, _ = run_rules(sub, trace)
    # Without regularisation the model is not recognised as ex4 by structure, but the heading says ex4.
    assert v["ex4_regularization"].status == "fail" and "celda 18" in v["ex4_regularization"].message

    sub, trace = standard()
    trace.evals.append(make_eval(FINAL_ID, cell=18, line=1))
    v, _ = run_rules(sub, trace)
    assert v["ex42_test_evaluation"].status == "warn" and "2 veces" in v["ex42_test_evaluation"].message

    sub, trace = standard()
    trace.evals = [make_eval(FINAL_ID, cell=18, kind="train")]
    v, _ = run_rules(sub, trace)
    assert v["ex42_test_evaluation"].status == "fail"


# ---------------------------------------------------------------- performance

@pytest.mark.parametrize("val,status,points", [(0.89, "pass", 1.0), (0.87, "warn", 0.4), (0.80, "fail", 0.0)])
def test_final_val_accuracy_thresholds(val, status, points):
    v, _ = run_rules(*standard(), runs=[final_run(val=val, test=val - 0.01)])
    verdict = v["final_val_accuracy"]
    assert (verdict.status, verdict.points) == (status, pytest.approx(points, abs=1e-3))
    assert f"{val:.2%}" in verdict.message and "1.0 puntos" in verdict.message


def test_final_val_accuracy_when_the_retrain_fails():
    v, _ = run_rules(*standard(), runs=[final_run(status="not_reproducible")])
    assert v["final_val_accuracy"].status == "fail"
    assert "No se pudo reentrenar la red final (celda 18, línea 5)" in v["final_val_accuracy"].message
    v, _ = run_rules(*standard(), runs=[final_run(status="budget")])
    assert v["final_val_accuracy"].status == "skip" and "tiempo" in v["final_val_accuracy"].message
    v, _ = run_rules(*standard(), runs=[])
    assert v["final_val_accuracy"].status == "skip" and "no se reentrenó" in v["final_val_accuracy"].message


def test_reported_far_above_reproduced_warns():
    line = "938/938 - 2s - loss: 0.21 - accuracy: 0.95 - val_loss: 0.2 - val_accuracy: 0.9612"
    sub = notebook(standard_cells(), outputs={17: [{"output_type": "stream", "name": "stdout", "text": line}]})
    v, _ = run_rules(sub, standard_trace(), runs=[final_run(val=0.89)])
    assert v["reported_vs_reproduced"].status == "warn"
    assert "96.12%" in v["reported_vs_reproduced"].message and "89.00%" in v["reported_vs_reproduced"].message
    v, _ = run_rules(sub, standard_trace(), runs=[final_run(val=0.95)])
    assert v["reported_vs_reproduced"].status == "pass"


# ---------------------------------------------------------------- hygiene and analysis

def test_hygiene_rules():
    cells = standard_cells()
    cells.insert(6, ("code", "La sigmoide converge más lento porque se satura"))
    sub = notebook(cells, outputs={1: [{"output_type": "stream", "text": "ok"}]}, counts={1: 1, 3: 3, 4: 2})
    trace = make_trace([], status="ok", errors=[CellError(cell=6, ename="SyntaxError", line=1,
                                                          evalue="invalid syntax (3107983410.py, line 1)")])
    v, _ = run_rules(sub, trace, runs=[])
    assert v["code_parses"].status == "fail" and "celda 7, línea 1" in v["code_parses"].message
    assert v["code_parses"].evidence[0].excerpt == "La sigmoide converge más lento porque se satura"
    assert v["cells_run"].status == "fail" and "celda 7, línea 1 (SyntaxError: invalid syntax)" in v["cells_run"].message
    assert v["cells_run"].points == 0.0  # code_parses already deducts for that cell
    assert v["execution_order"].status == "warn" and "celda 5" in v["execution_order"].message
    assert v["outputs_saved"].status == "pass"
    cells[6] = ("code", "### Análisis\n" + cells[5][1])  # the ex1 analysis pasted into a code cell
    cells[5] = ("markdown", "Gráficas.")
    trace.static = {}  # facts of this new notebook
    v, _ = run_rules(notebook(cells), trace, runs=[])
    assert v["code_parses"].status == "fail" and v["analysis_written"].status == "pass"
    empty = notebook(standard_cells(), saved=False)
    v, _ = run_rules(empty, standard_trace())
    assert v["outputs_saved"].status == "fail" and v["outputs_saved"].points == -0.5
    assert v["execution_order"].status == "skip"


def test_analysis_missing_for_one_exercise():
    cells = standard_cells()
    cells[15] = ("markdown", "SGD es más lento.")
    v, _ = run_rules(notebook(cells), standard_trace())
    verdict = v["analysis_written"]
    assert verdict.status == "warn" and "ejercicio 3" in verdict.message and "ejercicio 1" not in verdict.message
    assert verdict.points == -RUBRIC.rules["analysis_written"].params["deduction_per_exercise"]


def test_statement_before_the_code_is_not_analysis():
    cells = standard_cells()
    cells[5] = ("markdown", "Comentario breve.")
    cells[2] = ("markdown", "## 1. Unidades de activación\n\n" + cells[5][1])
    cells.insert(3, ("markdown", "**Ejercicio 1**: " + "compara sigmoide y ReLU, explica el gradiente " * 10))
    sub = notebook(cells)
    trace = make_trace([make_fit(f.index, f.model_id, f.model.layers, cell=f.location.cell + 1, line=6,
                                 optimizer=f.compile.optimizer["class_name"],
                                 callbacks=tuple(c.class_name for c in f.callbacks)) for f in standard_fits()],
                       [make_eval(FINAL_ID, cell=19)])
    v, _ = run_rules(sub, trace)
    assert v["analysis_written"].status == "warn" and "ejercicio 1" in v["analysis_written"].message
    # The student's own "Ejercicio 1: ..." conclusions after the code do count.
    sub.cells[6].source = "Ejercicio 1: " + ANALYSIS["ex1"]
    v, _ = run_rules(sub, trace)
    assert v["analysis_written"].status == "pass"


# ---------------------------------------------------------------- crashes, wrong hand-ins, grade()

def test_crash_in_cell_3_is_graded_from_the_code():
    sub = notebook(standard_cells())
    trace = make_trace([], status="ok", errors=[CellError(cell=3, ename="NameError", evalue="name 'Sequential' is "
                                                                                              "not defined")])
    v, total = run_rules(sub, trace, runs=[])
    for rule in ("ex1_activations", "ex2_initializers", "ex3_optimizers", "ex4_regularization"):
        assert v[rule].status == "warn" and "No se pudo comprobar ejecutando el código" in v[rule].message
    assert v["split_20"].status == "pass" and v["cells_run"].status == "fail"
    assert "celda 4 (NameError" in v["cells_run"].message
    assert v["cells_run"].points == -RUBRIC.rules["cells_run"].deduction["fail"]
    assert 0 < total < 10


def test_wrong_assignment_fails_every_exercise_rule():
    sub = notebook([("code", "from keras.datasets import cifar10\n(x, y), _ = cifar10.load_data()\n"
                             "model.fit(x, y, epochs=5, validation_split=0.1)")])
    trace = make_trace([make_fit(0, 1, x=ref("other", 50_000), cell=0, line=3, validation_split=0.1)])
    v, total = run_rules(sub, trace, runs=[])
    exercise_rules = [r for r, spec in RUBRIC.rules.items() if spec.exercise != "general" and spec.points > 0]
    assert exercise_rules
    for rule in exercise_rules:
        assert v[rule].status == "fail" and "no parece el Trabajo 2" in v[rule].message
    assert total == 0.0


def test_grade_is_deterministic_and_scores_add_up():
    sub, trace = standard()
    trace.evals.append(make_eval(1, cell=3, line=7))  # one warn deduction
    first = grade(sub, trace, [final_run(val=0.87)], RUBRIC, attribute(sub, trace))
    second = grade(sub, trace, [final_run(val=0.87)], RUBRIC, attribute(sub, trace))
    assert [dataclasses.asdict(v) for v in first[0]] == [dataclasses.asdict(v) for v in second[0]]
    assert first[1:] == second[1:]
    verdicts, scores, total, maximum = first
    assert [v.id for v in verdicts] == list(RULES)
    assert maximum == 10.0
    assert total == pytest.approx(sum(s.points for s in scores), abs=0.011)
    assert {s.exercise for s in scores} == {"ex1", "ex2", "ex3", "ex4", "general"}
    assert total == pytest.approx(10 - 0.6 - 0.25, abs=0.011)  # final 0.87 keeps 0.4 of 1; test tuning warn


def test_a_crashing_rule_becomes_a_skip():
    sub, trace = standard()
    trace.fits[0].model.layers = None  # type: ignore[assignment]  # corrupt data, not a student error
    verdicts, _s, _t, _m = grade(sub, trace, [final_run()], RUBRIC, attribute(sub, standard_trace()))
    broken = [v for v in verdicts if "error interno" in v.message]
    assert broken and all(v.status == "skip" for v in broken)


@pytest.mark.parametrize("name", ["single_script.py", "one_file_per_exercise"])
def test_py_samples_from_static_facts(name):
    sub = load_submission(ROOT / "submissions" / name)
    trace = Trace(student=sub.student, status="not_run")
    v, _ = run_rules(sub, trace, runs=[])
    assert v["analysis_written"].status == "pass", v["analysis_written"].message
    assert v["outputs_saved"].status == "skip" and v["execution_order"].status == "skip"
    assert v["split_20"].status == "pass" and v["code_parses"].status == "pass"
    for rule in ("ex1_activations", "ex2_initializers", "ex3_optimizers"):
        assert v[rule].status == "warn", (rule, v[rule].message)


def test_split_20_checks_the_source_of_fits_that_crashed():
    cells = standard_cells()
    cells[7] = ("code", cells[7][1].replace("validation_split=0.2", "validation_data=(x_test, y_test)"))
    sub = notebook(cells)
    trace = standard_trace(errors=[CellError(cell=7, ename="ValueError", evalue="bad shape")])
    del trace.fits[2]  # the zeros fit never happened
    v, _ = run_rules(sub, trace)
    assert v["split_20"].status == "fail" and "celda 8, línea 6" in v["split_20"].message
    assert "(x_test, y_test)" in v["split_20"].message


def test_baselines_from_earlier_exercises_count():
    sub, trace = standard()
    del trace.fits[4]  # no glorot_uniform run in ex2: the ReLU run of ex1 is that baseline
    v, _ = run_rules(sub, trace)
    assert v["ex2_initializers"].status == "pass"
    sub, trace = standard()
    trace.fits[0] = make_fit(0, 1, mlp(("sigmoid", "sigmoid")), optimizer="SGD", cell=3, line=6)
    trace.fits[5] = make_fit(5, 6, optimizer="Nadam", cell=12, line=6)
    v, _ = run_rules(sub, trace)
    assert v["ex3_optimizers"].status == "pass"


def test_unreadable_hand_in_fails_exercises_with_the_load_error():
    from grader.load import LoadError

    sub = notebook([])
    sub.load_error = LoadError(code="invalid_json", message="el cuaderno no es JSON válido")
    v, total = run_rules(sub, Trace(student="s", status="not_run"), runs=[])
    assert v["ex1_activations"].status == "fail"
    assert v["ex1_activations"].message == "No se pudo leer la entrega: el cuaderno no es JSON válido"
    assert v["split_20"].status == "skip" and total == 0.0


# ---------------------------------------------------------------- the sample hand-ins (expected.yaml)

def _expected() -> dict:
    import yaml

    path = ROOT / "submissions" / "expected.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}


def _sample_path(student: str) -> Path | None:
    for candidate in (ROOT / "submissions" / f"{student}.ipynb", ROOT / "submissions" / f"{student}.py",
                      ROOT / "submissions" / student):
        if candidate.exists():
            return candidate
    return None


# Rules whose status the source and the saved outputs decide on their own, without running anything.
STATIC_DECIDABLE = {"code_parses", "outputs_saved", "execution_order", "split_20", "analysis_written"}
EXPECTED = sorted(_expected().items())


@pytest.mark.parametrize("student,spec", EXPECTED, ids=[s for s, _ in EXPECTED])
def test_samples_from_source_and_saved_outputs(student, spec):
    path = _sample_path(student)
    if path is None:
        pytest.skip(f"sample {student} not generated yet")
    sub = load_submission(path)
    v, _ = run_rules(sub, Trace(student=student, status="not_run"), runs=[])
    for rule, status in spec["rules"].items():
        if rule in STATIC_DECIDABLE or (status == "fail" and rule not in ("new_model_per_fit", "cells_run")):
            assert v[rule].status == status, (rule, v[rule].message)
    if spec["rules"].get("new_model_per_fit") != "fail":  # the code never shows a refit that is not there
        assert v["new_model_per_fit"].status == "skip", v["new_model_per_fit"].message


@pytest.mark.slow
@pytest.mark.kernel
@pytest.mark.parametrize("student,spec", EXPECTED, ids=[s for s, _ in EXPECTED])
def test_samples_captured_for_real(student, spec, tmp_path):
    """Run each sample in the real kernel (no retrain) and compare with expected.yaml."""
    from grader.capture.runner import capture_submission

    path = _sample_path(student)
    if path is None:
        pytest.skip(f"sample {student} not generated yet")
    sub = load_submission(path)
    trace = capture_submission(sub, tmp_path)
    v, _ = run_rules(sub, trace, runs=[])
    needs_retrain = {"final_val_accuracy", "reported_vs_reproduced"}
    for rule, status in spec["rules"].items():
        if rule not in needs_retrain:
            assert v[rule].status == status, (rule, v[rule].message)


def test_split_20_with_validation_the_probe_could_not_record():
    sub, trace = standard()
    replace_fit(trace, 0, validation_split=0.0)
    trace.fits[0].other_kwargs["validation_data"] = "<_BatchDataset element_spec=...>"
    v, _ = run_rules(sub, trace)
    assert v["split_20"].status == "warn" and "<_BatchDataset" in v["split_20"].message
    assert v["split_20"].points == -RUBRIC.rules["split_20"].deduction["warn"]


def test_empty_and_markdown_only_hand_ins_do_not_crash():
    for sub in (notebook([]), notebook([("markdown", "# Trabajo 2\\n\\nNo me ha dado tiempo.")])):
        v, total = run_rules(sub, Trace(student="s", status="ok"), runs=[])
        assert total == 0.0
        assert not [x for x in v.values() if "error interno" in x.message]
        assert all(v[r].status == "fail" for r in ("ex1_activations", "ex2_initializers", "ex3_optimizers"))


def test_a_configuration_whose_cell_crashed_is_read_from_the_code():
    sub, trace = standard()
    del trace.fits[7]  # RMSprop: NameError in celda 15 (not imported)
    trace.errors.append(CellError(cell=14, ename="NameError", evalue="name 'RMSprop' is not defined"))
    v, _ = run_rules(sub, trace)
    verdict = v["ex3_optimizers"]
    assert verdict.status == "warn" and "Según el código (celda 15)" in verdict.message
    assert 0 < verdict.points < 2.5
    assert {e.cell for e in verdict.evidence} >= {12, 13, 14}
    # The student's own run of that cell, saved in the notebook, shows it trained.
    line = "375/375 - 3s - accuracy: 0.86 - loss: 0.38 - val_accuracy: 0.8612 - val_loss: 0.39"
    sub = notebook(standard_cells(), outputs={14: [{"output_type": "stream", "name": "stdout", "text": line}]})
    v, _ = run_rules(sub, trace)
    assert v["ex3_optimizers"].status == "pass" and "salidas guardadas (celda 15)" in v["ex3_optimizers"].message
    # Saved training output of the SGD cell says nothing about the RMSprop cell that crashed.
    sub = notebook(standard_cells(), outputs={12: [{"output_type": "stream", "name": "stdout", "text": line}]})
    v, _ = run_rules(sub, trace)
    assert v["ex3_optimizers"].status == "warn"


def test_fits_inside_a_helper_function_quote_the_helper():
    cells = [("code", "from keras.datasets import fashion_mnist\n"
                      "(x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()"),
             ("code", "def entrenar(modelo):\n    modelo.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n"
                      "    return modelo.fit(x_train, y_train, epochs=3,\n"
                      "                      validation_data=(x_test, y_test))"),
             ("code", "h = entrenar(crear_modelo('sigmoid'))")]
    fit = make_fit(0, 1, cell=2, line=1, validation_split=0.0, validation_data=[ref("test", 10_000)] * 2)
    fit.location.function = "entrenar"
    v, _ = run_rules(notebook(cells), make_trace([fit]), runs=[])
    verdict = v["split_20"]
    assert verdict.status == "fail" and "`validation_data=(x_test, y_test)`" in verdict.message
    assert verdict.evidence[0].excerpt.splitlines()[0] == "h = entrenar(crear_modelo('sigmoid'))"
    assert "celda 2, línea 3" in verdict.evidence[0].excerpt
    assert "validation_data=(x_test, y_test))" in verdict.evidence[0].excerpt


def test_images_present_in_both_splits_are_not_test_leakage():
    sub, trace = standard()
    real_train = {"train": 59_990, "both": 10, "other": 0, "total": 60_000}
    for fit in trace.fits:
        fit.x = ref("x", 60_000, rows=real_train)
    replace_fit(trace, 0, validation_split=0.0, x=ref("x", 48_000, rows={"train": 47_992, "both": 8}),
                validation_data=[ref("v", 12_000, rows={"train": 11_998, "both": 2})] * 2)
    v, _ = run_rules(sub, trace)
    assert v["split_20"].status == "pass" and v["no_test_tuning"].status == "pass"
    trace.evals = [make_eval(FINAL_ID, cell=18)]
    trace.evals[0].x.rows = {"test": 9_990, "both": 10, "other": 0, "total": 10_000}
    v, _ = run_rules(sub, trace)
    assert v["ex42_test_evaluation"].status == "pass"


def test_a_stop_by_the_checks_time_bound_is_never_a_fail_for_what_it_cut():
    """`grader check` stopped the notebook at cell 4 (exercise 1's second model): a fail that may come from
    what the stop kept from running is a skip; a fail resting on what was seen before it stays."""
    stop = CellError(cell=4, ename="CheckTimeLimit", evalue="the quick check's time limit of 40 s was reached",
                     limit="check_time", limit_value=40.0)

    def cut(trace: Trace) -> Trace:
        trace.status, trace.errors = "check_time", [stop]
        trace.fits = [f for f in trace.fits if f.location.cell is not None and f.location.cell < 4]
        return trace

    sub, trace = standard()
    trace.fits[0] = make_fit(0, 1, mlp(("tanh", "tanh")), cell=3, line=6)  # no sigmoid seen, and no ReLU ran
    v, _ = run_rules(sub, cut(trace))
    assert v["ex1_activations"].status == "skip" and "comprobación rápida" in v["ex1_activations"].message
    assert v["cells_run"].status == "skip" and "--full" in v["cells_run"].message
    # Without the stop, the same recorded fit is a fail: the skip above is the bound's doing.
    sub, trace = standard()
    trace.fits[0] = make_fit(0, 1, mlp(("tanh", "tanh")), cell=3, line=6)
    v, _ = run_rules(sub, trace)
    assert v["ex1_activations"].status == "fail"
    # Test data used for validation before the stop is seen, whatever came after: still a fail.
    sub, trace = standard()
    replace_fit(trace, 0, validation_split=0.0, validation_data=[ref("test", 10_000), ref("test", 10_000)])
    v, _ = run_rules(sub, cut(trace))
    assert v["split_20"].status == "fail"
