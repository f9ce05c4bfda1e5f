"""Attribution of fits to exercises and choice of the final model, on synthetic traces.

The builders (make_fit, make_trace, notebook, ...) live in tests/builders.py.
"""

from __future__ import annotations

from grader.capture.trace import (
    LayerSpec,
)
from grader.load import load_submission
from grader.results import RunResult
from grader.rules.attribution import attribute, cell_exercises, exercise_of_text, marker_exercise
from tests.builders import (
    FINAL_ID,
    ROOT,
    make_eval,
    make_fit,
    make_trace,
    mlp,
    notebook,
    standard_cells,
    standard_fits,
    standard_trace,
)

# ---------------------------------------------------------------- tests

def exercises_of(att) -> list[str | None]:
    return [f.exercise for f in att.fits]


def test_headings_attribute_every_fit_and_pick_the_final():
    att = attribute(notebook(standard_cells()), standard_trace())
    assert exercises_of(att) == ["ex1"] * 2 + ["ex2"] * 3 + ["ex3"] * 3 + ["ex4"]
    assert [f.source for f in att.fits][:2] == ["heading", "heading"]
    assert [f.label for f in att.fits] == ["sigmoid", "ReLU", "zeros", "random_normal", "glorot_uniform", "SGD",
                                           "Adam", "RMSprop", "Dropout+EarlyStopping"]
    assert att.final_model_id == FINAL_ID
    assert att.label_of_model(FINAL_ID) == "final"
    assert any("ejercicio 2" in e and "celda 8" in e for e in att.evidence)


def test_structure_attributes_without_any_heading():
    cells = [(k, s) for k, s in standard_cells() if not s.startswith("#")]
    trace = make_trace(standard_fits(with_cells=False), [make_eval(FINAL_ID)])
    att = attribute(notebook(cells), trace)
    assert exercises_of(att) == ["ex1"] * 2 + ["ex2"] * 3 + ["ex3"] * 3 + ["ex4"]
    assert {f.source for f in att.fits[:8]} == {"structure"}
    assert att.fits[8].source == "regularized"
    assert att.final_model_id == FINAL_ID


def test_renamed_headings_fall_back_to_structure():
    cells = standard_cells()
    for i, (kind, src) in enumerate(cells):
        if src.startswith("## "):
            cells[i] = (kind, "## Parte siguiente")  # names no exercise
    att = attribute(notebook(cells), standard_trace())
    assert exercises_of(att) == ["ex1"] * 2 + ["ex2"] * 3 + ["ex3"] * 3 + ["ex4"]


def test_final_prefers_the_regularised_model_evaluated_on_test():
    fits = standard_fits() + [make_fit(9, 11, mlp(("relu",), units=(1024,), dropout=0.5), cell=17, line=9)]
    # Model 11 is regularised and later, but only model 10 is evaluated on test.
    att = attribute(notebook(standard_cells()), make_trace(fits, [make_eval(FINAL_ID, cell=18)]))
    assert att.final_model_id == FINAL_ID
    att = attribute(notebook(standard_cells()), make_trace(fits, []))
    assert att.final_model_id == 11


def test_no_exercise_4_means_no_final():
    att = attribute(notebook(standard_cells()), make_trace(standard_fits()[:8]))
    assert att.final_model_id is None
    assert att.evidence[-1] == "No se ha identificado la red final."


def test_label_runs_fills_runs():
    att = attribute(notebook(standard_cells()), standard_trace())
    runs = [RunResult(run_id="m1", model_id=1, fit_indices=[0]), RunResult(run_id="m10", model_id=10, fit_indices=[8])]
    att.label_runs(runs)
    assert (runs[0].exercise, runs[0].label, runs[0].is_final) == ("ex1", "sigmoid", False)
    assert (runs[1].exercise, runs[1].label, runs[1].is_final) == ("ex4", "final", True)


def test_text_markers():
    assert exercise_of_text("2. Inicialización de parámetros") == "ex2"
    assert exercise_of_text("Regularización y red final") == "ex4"
    assert exercise_of_text("Ejercicio 3") == "ex3"
    assert exercise_of_text("Consideraciones iniciales") is None
    assert exercise_of_text("ej1.py") == "ex1"
    assert marker_exercise("# Pregunta 4.2: evaluación") == "ex4"
    assert marker_exercise("la activación sigmoide") is None


def test_py_hand_ins_attribute_by_file_and_banner():
    multi = load_submission(ROOT / "submissions" / "one_file_per_exercise")
    by_cell = cell_exercises(multi)
    for cell in multi.cells:
        expected = {"utils.py": None, "ej1.py": "ex1", "ej2.py": "ex2", "ej3.py": "ex3", "ej4.py": "ex4"}
        assert by_cell[cell.index] == expected[cell.origin.file], cell.origin
    script = load_submission(ROOT / "submissions" / "single_script.py")
    banners = {c.index: cell_exercises(script)[c.index] for c in script.cells if "# Ejercicio" in c.source
               or "# Pregunta" in c.source}
    assert sorted(set(banners.values())) == ["ex1", "ex2", "ex3", "ex4"]
    # A fit located in a banner cell is attributed by that banner, without structure.
    cell = next(i for i, ex in banners.items() if ex == "ex3")
    att = attribute(script, make_trace([make_fit(0, 1, optimizer="SGD", cell=cell, line=6)]))
    assert (att.fits[0].exercise, att.fits[0].source) == ("ex3", "heading")


def test_separate_activation_layers_count_for_the_dense_before_them():
    from grader.rules.attribution import signature

    layers = [LayerSpec(type="Flatten"), LayerSpec(type="Dense", units=64, activation="linear"),
              LayerSpec(type="Activation", activation="sigmoid"), LayerSpec(type="Dense", units=32),
              LayerSpec(type="LeakyReLU"), LayerSpec(type="Dense", units=10, activation="softmax")]
    assert signature(make_fit(0, 1, layers))["activation"] == ("sigmoid", "leaky_relu")
