"""Instructor overrides on a real gradebook: two tiny hand-ins graded once per module by the real batch
(real kernels, real retraining with the quick budget), then override -> re-render -> the HTML, the PDF
text, grades.csv and every export show the corrected grade; a re-grade with changed content marks the
override "to confirm".
"""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest
from pypdf import PdfReader

from grader.batch import grade_batch
from grader.codec import from_data
from grader.gradebook import Gradebook
from grader.options import Budget, GradeOptions
from grader.results import GradeResult
from grader.review.overrides import clear_override, corrected_results, rerender, set_override
from tests.builders import tiny_notebook

pytestmark = [pytest.mark.kernel]

VALIDATION_SPLIT = "validation_split=0.2"
TEST_AS_VALIDATION = "validation_data=(x_test, y_test)"
NOTE = "La comparación está en el anexo que entregó por correo; la doy por buena."


def notebook(units: int, validation: str = VALIDATION_SPLIT) -> nbformat.NotebookNode:
    """The batch tests' tiny hand-in (exercise 4 only, one epoch), validating as told."""
    nb = tiny_notebook(units)
    for cell in nb.cells:
        cell.source = cell.source.replace(VALIDATION_SPLIT, validation)
    assert any(validation in cell.source for cell in nb.cells)
    return nb


def options(out: Path) -> GradeOptions:
    return GradeOptions(out_dir=out, budget=Budget(name="quick"), pdf=False, cache_dir=out.parent / "cache")


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Path:
    """hand-ins/ (alumno0, alumno1) graded into out/; tests work on copies of both."""
    root = tmp_path_factory.mktemp("graded")
    handins = root / "handins"
    handins.mkdir()
    nbformat.write(notebook(16), handins / "alumno0.ipynb")
    nbformat.write(notebook(24), handins / "alumno1.ipynb")
    summary = grade_batch(handins, options(root / "out"), jobs=2, progress=False)
    assert sorted(summary.graded) == ["alumno0", "alumno1"], summary
    return root


@pytest.fixture
def work(graded: Path, tmp_path: Path) -> Path:
    shutil.copytree(graded / "handins", tmp_path / "handins")
    shutil.copytree(graded / "out", tmp_path / "out")
    shutil.copytree(graded / "cache", tmp_path / "cache")
    return tmp_path


def csv_rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "grades.csv").open(encoding="utf-8-sig", newline="") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


def stored(out: Path, student: str) -> GradeResult:
    with Gradebook(out / "gradebook.sqlite") as book:
        return from_data(GradeResult, book.results([student])[0]["result"])


def verdict(result: GradeResult, rule: str):
    return next(v for v in result.rules if v.id == rule)


def expected_score(auto: GradeResult, rule: str, points: float) -> float:
    """The rubric's scoring written out for one changed verdict (exercise clamped to its maximum)."""
    changed = verdict(auto, rule)
    total = 0.0
    for es in auto.exercises:
        earned = sum(v.points if v is not changed else points for v in auto.rules if v.exercise == es.exercise)
        total += min(max(earned, 0.0), es.max_points) if es.exercise != "general" else earned
    return round(min(max(total, 0.0), auto.max_score), 2)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, timeout=300)


def test_override_rerenders_report_pdf_csv_and_every_export(work: Path):
    out = work / "out"
    auto = stored(out, "alumno0")
    assert verdict(auto, "ex1_activations").status == "fail"  # the tiny hand-in has no exercise 1
    before = csv_rows(out)
    want = expected_score(auto, "ex1_activations", 2.5)
    assert want > auto.score

    t = time.monotonic()
    set_override(out, "alumno0", "ex1_activations", "pass", NOTE, pdf=True)
    print(f"override + re-render (HTML, PDF, summary, review, exports): {time.monotonic() - t:.1f} s")

    html = (out / "alumno0.html").read_text(encoding="utf-8")
    assert f"Revisado por el profesor: {NOTE}" in html
    assert "Nota (revisada por el profesor)" in html
    assert f"{want:g} / 10" in html
    assert "Veredicto automático del corrector: ✗ incorrecto, 0 / 2.5" in html
    pdf_text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(str(out / "alumno0.pdf")).pages)
    assert "Revisado por el profesor" in pdf_text and f"{want:g} / 10" in pdf_text

    rows = csv_rows(out)
    assert float(rows["alumno0"]["score"]) == want
    assert rows["alumno0"]["ex1"] == "2.5"
    assert "ex1_activations" not in rows["alumno0"]["failed_rules"]
    assert rows["alumno1"] == before["alumno1"]  # the other hand-in is untouched

    results = {r["student"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    corrected = next(v for v in results["alumno0"]["rules"] if v["id"] == "ex1_activations")
    assert results["alumno0"]["score"] == want
    assert corrected["status"] == "pass" and corrected["override"]["note"] == NOTE
    assert corrected["override"]["auto_status"] == "fail"
    assert json.loads((out / "results" / "alumno0.json").read_text())["score"] == want
    suite = next(s for s in ET.parse(out / "junit.xml").getroot() if s.get("name") == "alumno0")
    assert suite.find("properties/property[@name='score']").get("value") == f"{want:g}"
    case = next(c for c in suite if c.get("name") == "ex1_activations")
    assert case.find("failure") is None
    gradescope = json.loads((out / "gradescope" / "alumno0" / "results.json").read_text())
    assert gradescope["score"] == want
    test = next(t for t in gradescope["tests"] if t["name"].endswith("ex1_activations"))
    assert test["status"] == "passed" and NOTE in test["output"]

    # The gradebook keeps the automatic result: the override is applied on top, not baked in.
    assert verdict(stored(out, "alumno0"), "ex1_activations").status == "fail"
    summary = (out / "index.html").read_text(encoding="utf-8")
    assert "revisada" in summary and "Revisar" in summary


def test_points_general_rules_and_clear(work: Path):
    out = work / "out"
    auto = stored(out, "alumno0")
    set_override(out, "alumno0", "ex1_activations", "warn", "Compara solo una activación.", points=1.25)
    assert float(csv_rows(out)["alumno0"]["ex1"]) == 1.25
    # A general rule only deducts: passing it removes its deduction (the rubric's points for "pass").
    deduction = verdict(auto, "outputs_saved").points
    assert deduction < 0
    set_override(out, "alumno0", "outputs_saved", "pass", "Las salidas estaban en el PDF adjunto.")
    row = csv_rows(out)["alumno0"]
    general = next(es.points for es in auto.exercises if es.exercise == "general")
    assert float(row["general"]) == pytest.approx(general - deduction)
    assert "outputs_saved" not in row["failed_rules"]

    clear_override(out, "alumno0", "ex1_activations")
    clear_override(out, "alumno0", "outputs_saved")
    row = csv_rows(out)["alumno0"]
    assert float(row["score"]) == auto.score and float(row["ex1"]) == 0
    assert "Revisado por el profesor" not in (out / "alumno0.html").read_text(encoding="utf-8")
    with Gradebook(out / "gradebook.sqlite") as book:
        assert book.overrides() == []


def test_cli_override_review_and_errors_with_close_matches(work: Path):
    out = str(work / "out")
    proc = run_cli("override", out, "alumno0", "split_20", "--status", "fail", "--note", "Valida con test en el anexo.",
                   "--no-pdf")
    assert proc.returncode == 0, proc.stderr
    assert "split_20 pass -> fail" in proc.stdout
    assert "split_20" in csv_rows(work / "out")["alumno0"]["failed_rules"]

    listing = run_cli("review", out, "alumno0")
    assert listing.returncode == 0, listing.stderr
    line = next(x for x in listing.stdout.splitlines() if "split_20" in x)
    assert "✗" in line and "[profesor; automático: pass]" in line

    bad_student = run_cli("override", out, "alumno", "split_20", "--status", "pass", "--note", "x")
    assert bad_student.returncode == 2
    assert "unknown student 'alumno'" in bad_student.stderr and "alumno0" in bad_student.stderr
    bad_rule = run_cli("override", out, "alumno0", "split20", "--status", "pass", "--note", "x")
    assert bad_rule.returncode == 2 and "close matches: split_20" in bad_rule.stderr
    bad_points = run_cli("override", out, "alumno0", "ex1_activations", "--status", "pass", "--points", "7",
                         "--note", "x")
    assert bad_points.returncode == 2 and "between 0 and 2.5" in bad_points.stderr
    no_override = run_cli("override", out, "alumno1", "--clear", "split_20")
    assert no_override.returncode == 2 and "unknown override" in no_override.stderr
    nowhere = run_cli("review", str(work / "nothing-here"))
    assert nowhere.returncode == 2 and "no gradebook.sqlite" in nowhere.stderr


def test_regrade_with_changed_verdict_marks_override_to_confirm(work: Path):
    out, handins = work / "out", work / "handins"
    set_override(out, "alumno0", "split_20", "warn", "La partición es manual pero correcta.")
    set_override(out, "alumno1", "ex1_activations", "pass", NOTE)
    # alumno0 now validates on the test set: its automatic split_20 verdict changes under the override.
    nbformat.write(notebook(16, TEST_AS_VALIDATION), handins / "alumno0.ipynb")
    summary = grade_batch(handins, options(out), jobs=2, force=True, progress=False)
    assert sorted(summary.graded) == ["alumno0", "alumno1"]

    with Gradebook(out / "gradebook.sqlite") as book:
        overrides = {o.student: o for o in book.overrides()}
        results = {r.student: r for r in corrected_results(book)}
    changed, same = overrides["alumno0"], overrides["alumno1"]
    assert changed.to_confirm and changed.auto_status == "pass" and changed.auto_status_now == "fail"
    assert not same.to_confirm  # re-graded, but its automatic verdict did not change
    # The instructor's verdict still counts until confirmed or cleared.
    assert verdict(results["alumno0"], "split_20").status == "warn"
    assert verdict(stored(out, "alumno0"), "split_20").status == "fail"

    review = (out / "review.html").read_text(encoding="utf-8")
    assert "corrección por confirmar" in review and "alumno0.html#rule-split_20" in review
    assert 'id="rule-split_20"' in (out / "alumno0.html").read_text(encoding="utf-8")
    assert "Revisado por el profesor" in (out / "alumno0.html").read_text(encoding="utf-8")
    listing = run_cli("review", str(out))
    assert "alumno0" in listing.stdout and "por confirmar" in listing.stdout

    # Setting the override again confirms it against the new automatic verdict.
    set_override(out, "alumno0", "split_20", "warn", "Revisado de nuevo: se mantiene el aviso.")
    with Gradebook(out / "gradebook.sqlite") as book:
        confirmed = book.overrides("alumno0")[0]
    assert not confirmed.to_confirm and confirmed.auto_status == "fail"
    assert "corrección por confirmar" not in (out / "review.html").read_text(encoding="utf-8")


OLD_SCHEMA = """
CREATE TABLE results (
    student TEXT PRIMARY KEY, submission_digest TEXT NOT NULL, rubric_digest TEXT NOT NULL,
    budget TEXT NOT NULL, status TEXT NOT NULL, score REAL, max_score REAL, result_json TEXT NOT NULL,
    finished_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 1);
"""


def test_gradebook_from_before_overrides_is_read_and_overridable(work: Path):
    """A gradebook with only the old `results` table (and results without verdict keys) still works;
    the rubric then comes from --rubric or the shipped file, checked by digest."""
    out = work / "old"
    out.mkdir()
    with sqlite3.connect(work / "out" / "gradebook.sqlite") as src:
        rows = src.execute("SELECT * FROM results").fetchall()
    with sqlite3.connect(out / "gradebook.sqlite") as db:
        db.executescript(OLD_SCHEMA)
        for row in rows:
            data = json.loads(row[7])
            for v in data["rules"]:
                v.pop("key"), v.pop("override")
            db.execute("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (*row[:7], json.dumps(data), *row[8:10]))
    set_override(out, "alumno1", "ex1_activations", "pass", NOTE)
    assert float(csv_rows(out)["alumno1"]["ex1"]) == 2.5
    done = rerender(out)
    assert {p.name for p in done.reports} == {"alumno0.html", "alumno1.html"}
    print(f"re-render of 2 reports + class pages, no PDF: {done.seconds:.1f} s")
