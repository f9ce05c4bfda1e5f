"""Quick-budget runs say how many epochs were trained of those asked for; the report shows why the
hand-in was taken for Trabajo 2."""

from __future__ import annotations

import re

from grader.report import render_report
from grader.report.plots import _exercise_figure
from grader.report.sample import history, run, sample_result


def capped_runs():
    return [run("m1", "ex1", "sigmoid", history(0.6, 0.58, 2), epochs_asked=20),
            run("m2", "ex1", "ReLU", history(0.8, 0.79, 2), epochs_asked=20)]


def test_plot_title_says_the_epochs_were_capped():
    fig = _exercise_figure("ex1", capped_runs())
    title = fig.get_suptitle()
    assert "2 de 20 épocas pedidas" in title and "abreviado" in title
    uncapped = _exercise_figure("ex1", [run("m1", "ex1", "ReLU", history(0.9, 0.88, 5), epochs_asked=5)])
    assert uncapped.get_suptitle() == ""


def test_runs_table_and_recognition_section(tmp_path):
    result = sample_result()
    result.runs = capped_runs() + result.runs[2:]
    result.meta["recognition"] = {"decision": "trabajo2", "data_loaded": False, "against": [],
                                  "evidence": ["el texto recoge el enunciado (3 frase(s) del enunciado)"]}
    html = render_report(result, tmp_path, pdf=False).html.read_text(encoding="utf-8")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert text.count("2 de 20 pedidas") == 2
    assert "Reconocida como el Trabajo 2" in text and "el texto recoge el enunciado" in text
    assert "los ejercicios se valoran leyendo el código" in text


def test_runs_cut_by_the_time_budget_say_so_in_spanish():
    from grader.report.view import run_rows
    from grader.results import RunResult

    cut = RunResult("m3", 3, [2], "ex2", "zeros", status="budget", cut="time", epochs_run=3, epochs_requested=10,
                    reason="retrain time budget used up during fit 2 (after 3 of 10 epochs)")
    never = RunResult("m4", 4, [3], "ex2", "normal", status="budget", cut="time",
                      reason="retrain time budget of 153 s used up (stopped after 158 s)", epochs_requested=10)
    rows = {r["id"]: r["status"] for r in run_rows([cut, never])}
    assert rows == {"m3": "fuera de presupuesto: 3 de 10 épocas, se acabó el tiempo de reentrenamiento",
                    "m4": "fuera de presupuesto: sin entrenar, se acabó el tiempo de reentrenamiento"}


def test_quick_budget_cuts_are_said_next_to_the_grade(tmp_path):
    import dataclasses

    result = sample_result()
    result.rules = [dataclasses.replace(v, status="skip", points=0.0) if v.id == "ex4_target" else v
                    for v in result.rules]  # the final model was cut: its target could not be checked
    result.meta.update(budget="quick", budget_cuts=["m9 · red final: 3 de 20 épocas, se acabó el tiempo"])
    page = render_report(result, tmp_path, pdf=False).html.read_text(encoding="utf-8")
    grade_block = page[page.index("grade-row"):page.index('class="points"')]
    assert "Presupuesto rápido: 1.5 punto(s) de la nota son de comprobaciones omitidas" in re.sub(r"\s+", " ", grade_block)
    result.meta.update(budget="full")
    assert "Presupuesto rápido" not in render_report(result, tmp_path, pdf=False).html.read_text(encoding="utf-8")
