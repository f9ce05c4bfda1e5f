"""Exercise attribution through titles and the edition's numbering (grader.rules.attribution)."""

from __future__ import annotations

from builders import RUBRIC, make_fit, make_trace, mlp, notebook

from grader.rules.analysis import split_by_marker
from grader.rules.attribution import Numbering, attribute, cell_exercises, exercise_of_text, numbering_of

MERGED = [
    ("markdown", "## Ejercicio 1: tensores"),                       # 0: the introductory lab
    ("code", "t = tf.constant([1, 2])"),                            # 1
    ("markdown", "## Ejercicio 5: una red para MNIST"),              # 2
    ("code", "m0.fit(x, y, epochs=1)"),                             # 3
    ("markdown", "## Exercise 9: Activation functions"),            # 4: Trabajo 2's exercise 1
    ("code", "m1.fit(training_images, training_labels)"),           # 5
    ("markdown", "## Ejercicio 10"),                                # 6: number only
    ("code", "m2.fit(training_images, training_labels)"),           # 7
    ("markdown", "## Exercise 11: Optimizers"),                     # 8
    ("code", "# Ejercicio 12\nm3.fit(training_images, training_labels)"),  # 9: banner in code
]


def test_numbers_are_read_through_the_titles_of_the_edition():
    sub = notebook(MERGED)
    numbering = numbering_of(sub, RUBRIC.aliases)
    assert numbering.offset == 8
    cells = cell_exercises(sub, numbering)
    assert [cells[i] for i in (1, 3, 5, 7, 9)] == [None, None, "ex1", "ex2", "ex4"]


def test_attribution_of_the_merged_edition():
    fits = [make_fit(0, 1, mlp(("relu",)), cell=3, line=1), make_fit(1, 2, mlp(("sigmoid", "sigmoid")), cell=5, line=1),
            make_fit(2, 3, mlp(init="zeros"), cell=7, line=1), make_fit(3, 4, mlp(("relu",), dropout=0.2), cell=9, line=2)]
    att = attribute(notebook(MERGED), make_trace(fits), RUBRIC.aliases)
    assert [f.exercise for f in att.fits] == [None, "ex1", "ex2", "ex4"]


def test_rubric_aliases_and_english_titles():
    assert exercise_of_text("Weight initialization") == "ex2"
    assert exercise_of_text("Sigmoid vs ReLU") is None
    numbering = numbering_of(notebook([("markdown", "# x")]), {"ex1": ["Sigmoid vs ReLU"]})
    assert exercise_of_text("Sigmoid vs ReLU", numbering) == "ex1"
    # "Ejercicio 12" was read as exercise 1 ("ejercicio 1..."): a number is a whole number.
    assert exercise_of_text("Ejercicio 12") is None


def test_standard_numbering_is_untouched():
    sub = notebook([("markdown", "## Ejercicio 1: Unidades de activación"), ("markdown", "## Ejercicio 3")])
    assert numbering_of(sub, RUBRIC.aliases).offset == 0
    assert cell_exercises(sub, numbering_of(sub))[1] == "ex3"


def test_analysis_markers_follow_the_numbering():
    text = "La sigmoide se satura.\nEjercicio 10: con ceros la red no aprende."
    assert [ex for ex, _ in split_by_marker(text, "ex1", Numbering(offset=8))] == ["ex1", "ex2"]
    assert [ex for ex, _ in split_by_marker(text, "ex1")] == ["ex1"]
