"""The "to review" queue on report sample results: every reason is found from typed facts, links to an
anchor that exists in the rendered report, and shows in review.html and the summary's "Revisar" column."""

from __future__ import annotations

import json
import re
from pathlib import Path

from grader.report import render_report
from grader.report.sample import broken_result, sample_result
from grader.results import Evidence, GradeResult, Override, Verdict
from grader.review.overrides import write_class_pages
from grader.review.queue import KIND_LABELS, load_similarity, review_items, review_lines


def flagged() -> GradeResult:
    """A hand-in with one of each reason the queue knows (but similarity, added from the JSON)."""
    r = sample_result("garcia")
    r.runs[2].status, r.runs[2].reason = "not_reproducible", "Lambda layer not allowlisted"  # m10 is "budget"
    r.rules.append(Verdict("suspicious_code", "general", "warn", 0.0, 0.0, "Código que el trabajo no necesita.",
                           evidence=[Evidence(cell=3, line=1, excerpt="import subprocess")], key="warn"))
    r.rules.append(Verdict("fits_recorded", "general", "fail", -1.0, 0.0, "Un fit no llegó.", key="fail_unrecorded"))
    next(v for v in r.rules if v.id == "ex2_zeros").key = "pass_saved"
    split = next(v for v in r.rules if v.id == "split_20")
    split.override = Override("garcia", "split_20", "pass", "Partición manual correcta.", auto_status="warn",
                              to_confirm=True, auto_status_now="fail")
    r.errors.append({"stage": "capture", "code": "timeout", "message": "La ejecución superó el tiempo límite."})
    return r


def clean() -> GradeResult:
    r = sample_result("lopez")
    r.rules = [v for v in r.rules if v.id != "reported_vs_reproduced"]
    r.runs = [run for run in r.runs if run.status == "ok"]
    r.errors = []
    return r


def other_homework() -> GradeResult:
    r = clean()
    r.student = "otro"
    r.rules.append(Verdict("ex1_activations", "ex1", "fail", 0.0, 2.5, "No parece el Trabajo 2.",
                           key="fail_not_trabajo2"))
    # Already corrected and confirmed by the instructor: no longer an open reason.
    r.rules.append(Verdict("suspicious_code", "general", "pass", 0.0, 0.0, "Revisado por el profesor: ok",
                           key="warn", override=Override("otro", "suspicious_code", "pass", "ok", auto_status="warn")))
    return r


def test_every_reason_is_found_and_links_to_evidence_in_the_report(tmp_path: Path):
    pairs = [{"a": "lopez", "b": "garcia", "score": 0.93, "flagged": True},
             {"a": "garcia", "b": "otro", "score": 0.41, "flagged": False}]
    items = review_items(flagged(), pairs)
    kinds = [i.kind for i in items]
    assert set(kinds) == set(KIND_LABELS) - {"not_trabajo2"}
    assert kinds.count("budget") == 1 and kinds.count("not_reproducible") == 1
    # The sample's Nadam run was capped, not cut by time: the queue says what happened to it.
    assert any(i.text == "Entrenamiento «Nadam» reentrenado solo 60 épocas (máximo del corrector)" for i in items)
    assert any(i.text == "Muy parecida a lopez (similitud 0.93)" for i in items)
    assert not any("otro" in i.text for i in items)  # an unflagged pair is no reason
    to_confirm = next(i for i in items if i.kind == "override_to_confirm")
    assert "«aviso» a «incorrecto»" in to_confirm.text

    html = render_report(flagged(), tmp_path, pdf=False).html.read_text(encoding="utf-8")
    ids = set(re.findall(r'id="([^"]+)"', html))
    for item in items:
        page, _, anchor = item.href.partition("#")
        if item.kind == "similarity":
            assert page == "similarity.html"
            continue
        assert page == "garcia.html" and anchor in ids, item

    other = review_items(other_homework())
    assert [i.kind for i in other] == ["not_trabajo2"]  # the confirmed override closed suspicious_code
    assert review_items(clean()) == []


def test_review_page_summary_column_and_terminal_listing(tmp_path: Path):
    (tmp_path / "similarity.json").write_text(json.dumps(
        [{"a": "garcia", "b": "otro", "score": 0.97, "flagged": True}]), encoding="utf-8")
    results = [flagged(), clean(), other_homework(), broken_result("roto")]
    pages = write_class_pages(results, tmp_path)

    review = pages["review"].read_text(encoding="utf-8")
    assert review.index("garcia") < review.index("roto")  # most reasons first
    assert 'href="garcia.html#rule-split_20"' in review and 'href="similarity.html"' in review
    assert "Muy parecida a garcia" in review  # the pair is a reason for both hand-ins
    assert 'id="h-otro"' in review and "¿otro trabajo?" in review
    assert "error de carga" in review and "No se pudo cargar la entrega" in review

    summary = pages["summary"].read_text(encoding="utf-8")
    assert "Por revisar: <strong><a href=\"review.html\">3</a>" in summary  # all but lopez
    assert re.search(r'<tr data-review="0">\s*<td data-label="Estudiante" data-sort="lopez"', summary)
    assert 'href="review.html#h-garcia"' in summary and 'id="only-review"' in summary

    lines = review_lines(flagged(), review_items(flagged()))
    assert any("split_20" in x and "POR CONFIRMAR" in x for x in lines)


def test_similarity_json_that_is_missing_or_malformed_means_no_pairs(tmp_path: Path):
    assert load_similarity(tmp_path) == []
    (tmp_path / "similarity.json").write_text("{ not json", encoding="utf-8")
    assert load_similarity(tmp_path) == []
    (tmp_path / "similarity.json").write_text(json.dumps(
        [{"a": "x", "b": 3, "score": 1.0, "flagged": True}, "junk", {"a": "x", "b": "y", "score": 0.9, "flagged": True}]))
    assert load_similarity(tmp_path) == [{"a": "x", "b": "y", "score": 0.9, "flagged": True}]
