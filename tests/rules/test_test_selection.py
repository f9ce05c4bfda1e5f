"""no_test_tuning on the source: a model picked by its test result, and fits that never ran."""

from __future__ import annotations

from builders import make_eval, notebook, run_rules, standard_cells, standard_trace

from grader.capture.trace import CellError

PICK = ("resultados = []\nfor m in modelos:\n    loss, acc = m.evaluate(x_test, y_test)\n"
        "    resultados.append({'modelo': m, 'test_acc': acc})\n"
        "mejor = max(resultados, key=lambda r: r['test_acc'])")


def test_best_model_chosen_on_test_fails_with_the_selecting_line():
    cells = standard_cells() + [("code", PICK)]
    verdicts, _ = run_rules(notebook(cells), standard_trace())
    v = verdicts["no_test_tuning"]
    assert (v.status, v.key) == ("fail", "fail_test_selection")
    assert v.evidence[0].cell == len(cells) - 1 and v.evidence[0].line == 5
    assert "max(resultados" in v.evidence[0].excerpt and "celda 21, línea 5" in v.message


def test_printing_test_accuracy_of_every_experiment_stays_a_warning():
    cells = standard_cells() + [("code", "for m in modelos:\n    print(m.evaluate(x_test, y_test))")]
    trace = standard_trace()
    trace.evals.append(make_eval(3, cell=len(cells) - 1, line=2))
    verdicts, _ = run_rules(notebook(cells), trace)
    assert verdicts["no_test_tuning"].key == "warn_test_for_selection"


def test_a_fit_that_never_ran_is_judged_on_its_source():
    cells = standard_cells()
    cells[14] = ("code", cells[14][1].replace("validation_split=0.2", "validation_data=(x_test, y_test)"))
    trace = standard_trace(errors=[CellError(cell=14, ename="NameError", evalue="name 'RMSprop' is not defined")])
    trace.fits = [f for f in trace.fits if f.location.cell != 14]
    verdicts, _ = run_rules(notebook(cells), trace)
    assert verdicts["no_test_tuning"].key == "fail_test_as_validation"
    assert verdicts["no_test_tuning"].evidence[0].cell == 14
