"""Selection of models on test results, found in the source (grader.source.selection)."""

from __future__ import annotations

import pytest
from builders import notebook

from grader.source.selection import find_selections

EVAL = ("def entrenar(modelo):\n"
        "    modelo.fit(x_train, y_train, epochs=2, validation_split=0.2)\n"
        "    loss, acc = modelo.evaluate(x_test, y_test)\n"
        "    return acc\n")


def lines(cells: list[str]) -> list[tuple[int, int, str]]:
    return [(f["cell"], f["line"], f["how"]) for f in find_selections(notebook([("code", c) for c in cells]))]


def test_max_over_dicts_keyed_by_test_accuracy_is_found_across_cells():
    found = lines([
        "results = []\nfor act in ['sigmoid', 'relu']:\n"
        "    loss, acc = model.evaluate(x_test, y_test)\n    results.append({'name': act, 'test_acc': acc})",
        "best = max(results, key=lambda r: r['test_acc'])\nprint(best['name'])",
    ])
    assert found == [(1, 1, "max")]


def test_helper_returning_a_test_metric_taints_its_callers_and_sorted_ranks():
    found = lines([EVAL, "scores = {n: entrenar(m) for n, m in modelos.items()}",
                   "ranking = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)"])
    assert found == [(2, 1, "sorted")]


def test_comparison_that_keeps_the_best_model_is_a_selection():
    found = lines(["best_acc = 0\nfor m in modelos:\n    _, acc = m.evaluate(test_images, test_labels)\n"
                   "    if acc > best_acc:\n        best_acc, best_model = acc, m"])
    assert found == [(0, 4, "if")]


@pytest.mark.parametrize("cells", [
    # printing each experiment's test accuracy: the softer case, no selection
    ["_, acc = model.evaluate(x_test, y_test)\nprint(f'test: {acc:.3f}')", "if acc > 0.85:\n    print('bien')"],
    # argmax over predictions decodes classes
    ["pred = model.predict(x_test)\nclases = np.argmax(pred, axis=1)"],
    # selection on validation is what the statement asks for
    ["best = max(results, key=lambda r: r['val_acc'])",
     "h = model.fit(x, y, validation_split=0.2)\nbest_epoch = np.argmax(h.history['val_accuracy'])"],
])
def test_no_selection_without_a_choice_on_test(cells):
    assert lines(cells) == []
