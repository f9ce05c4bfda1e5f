"""Recognition of Trabajo 2 from several kinds of evidence (grader.source.recognize)."""

from __future__ import annotations

from builders import notebook, standard_cells

from grader.rubric import read_rubric
from grader.source.recognize import OTHER, TRABAJO2, UNKNOWN, recognize
from grader.source.static import analyze

SHIPPED = read_rubric().recognition  # the shipped rubric's number and statement phrases


def decide(cells, rows=(), spec=SHIPPED):
    sub = notebook(cells)
    return recognize(sub, analyze(sub), rows, spec)


def test_answers_only_export_is_recognised_by_statement_and_experiments():
    # The standard hand-in without its import / load_data cell.
    cells = [c for c in standard_cells() if "load_data" not in c[1]]
    found = decide(cells)
    assert found.decision == TRABAJO2 and not found.data_loaded
    assert any("enunciado" in e for e in found.evidence)
    assert any("sigmoide frente a ReLU" in e and "SGD" in e for e in found.evidence)


def test_data_loading_under_any_variable_name():
    found = decide([("code", "mnist = tf.keras.datasets.fashion_mnist\n"
                             "(training_images, training_labels), (test_images, test_labels) = mnist.load_data()")])
    assert found.decision == TRABAJO2 and found.data_loaded


def test_trained_rows_of_fashion_mnist_settle_it():
    found = decide([("code", "x = np.load('datos.npy')\nmodel.fit(x, y)")], rows=[{"train": 48000, "other": 0}])
    assert found.decision == TRABAJO2 and found.data_loaded


def test_another_assignment_only_when_the_content_says_so():
    other = decide([("markdown", "# Trabajo 3: redes convolucionales"),
                    ("code", "(x, y), (xt, yt) = keras.datasets.cifar10.load_data()\nmodel.add(Dropout(0.3))")])
    assert other.decision == OTHER and len(other.against) == 2
    bare = decide([("code", "print('hola')")])
    assert bare.decision == UNKNOWN and bare.is_trabajo2


def test_a_variable_called_mnist_holding_fashion_mnist_is_not_another_dataset():
    found = decide([("code", "mnist = tf.keras.datasets.fashion_mnist\n(a, b), (c, d) = mnist.load_data()")])
    assert found.against == []
    digits = decide([("code", "from keras.datasets import mnist\n(a, b), (c, d) = mnist.load_data()")])
    assert digits.against and digits.decision == "other"


def test_the_assignment_number_and_statement_phrases_are_the_rubrics():
    from grader.rubric import RecognitionSpec

    cells = [("markdown", "# Práctica 3: Redes convolucionales\n## Aumento de datos"), ("code", "print('hola')")]
    assert decide(cells).decision == OTHER  # the shipped rubric: Trabajo 2
    third = RecognitionSpec(number=3, statement=("Aumento de datos",))  # another course's rubric
    found = decide(cells, spec=third)
    assert found.decision == TRABAJO2 and found.against == []
    assert "el texto se titula «Trabajo 3»" in found.evidence and any("aumento de datos" in e for e in found.evidence)
    answers = [c for c in standard_cells() if "load_data" not in c[1] and c[0] == "markdown"]
    assert any("recoge el enunciado" in e for e in decide(answers).evidence)  # the statement's phrases...
    assert not any("enunciado" in e for e in decide(answers, spec=RecognitionSpec()).evidence)  # ...are the rubric's
