"""Repeated fits on one model object, read from the source (grader.source.refits)."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.load import load_submission
from grader.source.refits import FitSite, RepeatedFit, repeated_fits
from tests.builders import notebook

BUILD = ("model = Sequential([Flatten(input_shape=(28, 28)), Dense(128, activation='relu'),\n"
         "    Dense(10, activation='softmax')])")
COMPILE = "model.compile(optimizer={opt}, loss='sparse_categorical_crossentropy', metrics=['accuracy'])"
FIT = "history = model.fit(x_train, y_train, epochs=3, batch_size=128, validation_split=0.2)"


def found(*cells: str | tuple[str, str]) -> list[tuple]:
    """(variable, cell, line, earlier cell, earlier line, in_loop) of each repeat; str cells are code."""
    sub = notebook([("code", c) if isinstance(c, str) else c for c in cells], saved=False)
    return [(r.name, r.fit.cell, r.fit.line, r.earlier.cell, r.earlier.line, r.in_loop) for r in repeated_fits(sub)]


def cell(opt: str = "'sgd'", build: bool = True) -> str:
    return "\n".join([BUILD] * build + [COMPILE.format(opt=opt), FIT])


# ---------------------------------------------------------------- what is found

def test_a_second_cell_fitting_the_same_model_without_building_it_again():
    # cell 0 builds (lines 1-2), compiles (3) and fits (4); cell 2 only compiles (1) and fits (2)
    assert found(cell(), ("markdown", "## Adam"), cell("'adam'", build=False)) == [("model", 2, 2, 0, 4, False)]


def test_the_result_carries_cell_and_lines_of_both_fits():
    multi_line = "model.compile(optimizer='adam')\nh = model.fit(x_train, y_train,\n              epochs=3, validation_split=0.2)"
    sub = notebook([("code", cell()), ("code", multi_line)], saved=False)
    assert repeated_fits(sub) == [RepeatedFit("model", FitSite(1, 2, 3), FitSite(0, 4, 4), in_loop=False)]


def test_a_loop_over_optimizers_that_only_compiles_again():
    loop = (f"{BUILD}\nfor opt in ['sgd', 'adam', 'rmsprop']:\n    {COMPILE.format(opt='opt')}\n"
            f"    historias[opt] = model.fit(x_train, y_train, epochs=3, validation_split=0.2)")
    assert found(loop) == [("model", 0, 5, 0, 5, True)]
    # the same loop over a list named elsewhere, and a while loop that trains one epoch per turn
    assert found("optimizadores = ['sgd', 'adam']", loop.replace("['sgd', 'adam', 'rmsprop']", "optimizadores")) \
        == [("model", 1, 5, 1, 5, True)]
    assert found(f"{BUILD}\nwhile epoca < 10:\n    model.fit(x_train, y_train, epochs=1)\n    epoca += 1") \
        == [("model", 0, 4, 0, 4, True)]


def test_a_model_fitted_before_the_loop_is_reported_against_that_fit():
    loop = f"for opt in ['adam', 'rmsprop']:\n    {COMPILE.format(opt='opt')}\n    {FIT}"
    assert found(cell(), loop) == [("model", 1, 3, 0, 4, False)]


def test_a_function_the_hand_in_calls_is_read_with_its_own_locals():
    helper = (f"def comparar(optimizadores):\n    {BUILD.replace(chr(10), chr(10) + '    ')}\n"
              f"    for opt in optimizadores:\n        {COMPILE.format(opt='opt')}\n        {FIT}")
    assert found(helper, "comparar(['sgd', 'adam'])") == [("model", 0, 6, 0, 6, True)]
    assert found(helper) == []  # never called: nothing ran


def test_legacy_model_add_and_the_test_set_as_validation_still_count():
    legacy = ("model = Sequential()\nmodel.add(Dense(32, activation='relu'))\nmodel.compile(optimizer='sgd')\n"
              "history = model.fit(x_train, y_train, epochs=2, validation_split=0.2)")
    again = "history2 = model.fit(x_train, y_train, epochs=1, validation_data=(x_test, y_test))"
    assert found(legacy, again) == [("model", 1, 1, 0, 4, False)]


def test_a_markdown_export_that_never_ran(tmp_path: Path):
    path = tmp_path / "respuestas.md"
    path.write_text("# Trabajo 2\n\n## 3. Optimizadores\n\n```python\n" + cell() + "\n```\n\nAhora Adam:\n\n"
                    "```python\n" + cell("'adam'", build=False) + "\n```\n", encoding="utf-8")
    sub = load_submission(path)
    assert sub.kind == "md" and [c.cell_type for c in sub.cells] == ["markdown", "code", "markdown", "code"]
    assert [(r.fit.cell, r.fit.line, r.earlier.cell, r.earlier.line) for r in repeated_fits(sub)] == [(3, 2, 1, 4)]


# ---------------------------------------------------------------- honest code: nothing found

HONEST = {
    "built again in the next cell": [cell(), cell("'adam'")],
    "built by a helper before each fit": ["def crear_modelo():\n    m = Sequential()\n    m.compile('adam')\n    return m",
                                          "model = crear_modelo()\n" + FIT, "model = crear_modelo()\n" + FIT],
    "built inside the loop": [f"for opt in optims:\n    model = crear_modelo()\n    {COMPILE.format(opt='opt')}\n    {FIT}"],
    "built and compiled per turn": [f"for opt in optims:\n    {BUILD.replace(chr(10), chr(10) + '    ')}\n"
                                    f"    {COMPILE.format(opt='opt')}\n    {FIT}"],
    "one fit per branch": [f"{BUILD}\nif rapido:\n    model.fit(x_train, y_train, epochs=1)\nelse:\n    {FIT}"],
    "a fit in a branch of the loop": [f"{BUILD}\nfor i, opt in enumerate(optims):\n    if i == 0:\n        {FIT}"],
    "a loop over one optimizer": [f"{BUILD}\nfor opt in ['adam']:\n    {COMPILE.format(opt='opt')}\n    {FIT}"],
    "a helper fitting its parameter": ["def entrenar(modelo):\n    return modelo.fit(x_train, y_train, epochs=3)",
                                       "h1 = entrenar(crear_modelo('sigmoid'))\nh2 = entrenar(crear_modelo('relu'))"],
    "weights reset in between": [cell(), "model.set_weights(pesos_iniciales)\n" + cell("'adam'", build=False)],
    "a helper that resets them": [cell(), "reiniciar_pesos(model)\n" + cell("'adam'", build=False)],
    "reset by a helper that reads the global": ["def reiniciar():\n    model.set_weights(pesos_iniciales)",
                                                cell(), "reiniciar()\n" + cell("'adam'", build=False)],
    "rebuilt by a helper declaring it global": ["def nuevo():\n    global model\n    model = Sequential()",
                                                "nuevo()\n" + FIT, "nuevo()\n" + FIT],
    "the loop variable is the model": [cell(), "for model in modelos:\n    " + FIT],
    "an alias that could be reset": [cell(), "modelos.append(model)\n" + cell("'adam'", build=False)],
    "scikit-learn and ImageDataGenerator fits": ["scaler.fit(x)\ndatagen.fit(x_train)", "scaler.fit(x)\ndatagen.fit(x_train)"],
    "a model attribute": ["self.model.fit(x, y, epochs=3)\nself.model.fit(x, y, epochs=3)"],
    "rebuilt on a timed line": [cell(), "%time model = crear_modelo()\n" + cell("'adam'", build=False)],
    "a cell that does not parse": [cell(), "model = crear_modelo()\nLa red no aprende con ceros.",
                                   cell("'adam'", build=False)],
    "code run through exec": [cell(), "exec(codigo_del_modelo)\n" + cell("'adam'", build=False)],
}


@pytest.mark.parametrize("cells", HONEST.values(), ids=HONEST.keys())
def test_honest_code_is_not_reported(cells):
    assert found(*cells) == []


def test_after_branches_a_repeat_counts_only_when_every_branch_kept_the_model():
    one_path = f"if opt != 'sgd':\n    {COMPILE.format(opt='opt')}\nelse:\n    model = crear_modelo()\n{FIT}"
    assert found(cell(), one_path) == []
    assert found(cell(), one_path.replace("model = crear_modelo()", "model.compile(optimizer='sgd')")) \
        == [("model", 1, 5, 0, 4, False)]


def test_each_script_of_a_multi_file_hand_in_starts_afresh(tmp_path: Path):
    folder = tmp_path / "eva"
    folder.mkdir()
    (folder / "ej1.py").write_text(cell() + "\n", encoding="utf-8")
    (folder / "ej3.py").write_text(cell("'adam'", build=False) + "\n", encoding="utf-8")
    assert repeated_fits(load_submission(folder)) == []
    (folder / "ej3.py").write_text(cell("'adam'", build=False) + "\n" + FIT + "\n", encoding="utf-8")
    assert [(r.fit.line, r.earlier.line) for r in repeated_fits(load_submission(folder))] == [(3, 2)]
