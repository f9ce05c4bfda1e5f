"""The instructor's overrides of verdicts: stored in the gradebook, applied after the rules, re-rendered.

An override replaces one verdict's status (and, if given, its points) and carries the instructor's
note; the score is recomputed from the rubric with the graders' own scorer (`grader.rules.score`).
The gradebook keeps the automatic result, so every later grading re-applies the override and can see
when the automatic verdict under it changed ("to confirm"). Re-rendering reads only the gradebook:
nothing is run or retrained.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from grader.codec import from_data
from grader.errors import GraderError
from grader.gradebook import Gradebook, load_results
from grader.results import STATUSES, GradeResult, Override, Verdict
from grader.rubric import EXERCISES, Rubric, parse_rubric, render
from grader.rules import load_rubric, score, validate_rubric

log = logging.getLogger(__name__)

GRADEBOOK = "gradebook.sqlite"
# Used when a rubric has no `messages.reviewed` (rubrics written before overrides existed).
REVIEWED_TEMPLATE = "Revisado por el profesor: {note}"
_SAME = 1e-6  # points are rounded to 4 decimals by the rules; anything closer is the same verdict


def open_gradebook(out_dir: Path) -> Gradebook:
    """The gradebook of a graded folder; an English error when OUT was never graded."""
    path = Path(out_dir) / GRADEBOOK
    if not path.is_file():
        raise GraderError(f"{out_dir}: no {GRADEBOOK} here; grade the hand-ins first (grader grade ... --out {out_dir})")
    return Gradebook(path)


def _unknown(kind: str, name: str, known: list[str], where: str) -> GraderError:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    if close:
        hint = f"close matches: {', '.join(close)}"
    else:
        hint = f"known: {', '.join(known[:20])}{', ...' if len(known) > 20 else ''}" if known else "none known"
    return GraderError(f"unknown {kind} {name!r} in {where} ({hint})")


def resolve_student(book: Gradebook, student: str) -> str:
    known = book.students()
    if student not in known:
        raise _unknown("student", student, known, str(book.path))
    return student


def resolve_rule(rule: str, rubric: Rubric) -> str:
    if rule not in rubric.rules:
        raise _unknown("rule", rule, list(rubric.rules), rubric.path)
    return rule


def rubric_of(book: Gradebook, result: GradeResult, fallback: Path | None = None) -> Rubric:
    """The rubric `result` was graded with: the text the batch stored, else the given (or shipped) file
    when its digest matches."""
    digest = str(result.meta.get("rubric_digest") or "")
    stored = book.rubric_text(digest) if digest else None
    if stored is not None:
        rubric = parse_rubric(yaml.safe_load(stored[1]), stored[0])
        validate_rubric(rubric)
        return rubric
    rubric = load_rubric(fallback)
    if digest and rubric.digest != digest:
        raise GraderError(f"{result.student} was graded with another rubric than {rubric.path}; "
                          "pass the same file with --rubric")
    return rubric


def _rubrics(book: Gradebook, fallback: Path | None):
    cache: dict[str, Rubric] = {}

    def get(result: GradeResult) -> Rubric:
        digest = str(result.meta.get("rubric_digest") or "")
        if digest not in cache:
            cache[digest] = rubric_of(book, result, fallback)
        return cache[digest]

    return get


def apply_overrides(result: GradeResult, overrides: list[Override], rubric: Rubric) -> GradeResult:
    """A copy of `result` with the instructor's verdicts in place and the score recomputed."""
    mine = [o for o in overrides if o.student == result.student and o.rule in rubric.rules]
    for o in overrides:
        if o.rule not in rubric.rules:
            log.warning("override of %s for %s ignored: %s has no such rule", o.rule, o.student, rubric.path)
    if not mine:
        return result
    result = copy.deepcopy(result)
    template = " ".join(rubric.messages.get("reviewed", REVIEWED_TEMPLATE).split())
    by_rule = {v.id: v for v in result.rules}
    for o in mine:
        spec = rubric.rules[o.rule]
        verdict = by_rule.get(o.rule)
        if verdict is None:  # the grader failed before this rule ran: the instructor's verdict stands alone
            verdict = Verdict(id=o.rule, exercise=spec.exercise, status="skip", points=0.0, max_points=spec.points,
                              message="", severity=spec.severity, title=spec.title, key="skip")
            result.rules.append(verdict)
        verdict.override = dataclasses.replace(o, auto_status_now=verdict.status, auto_points_now=verdict.points)
        verdict.status = o.status
        verdict.points = spec.points_for(o.status) if o.points is None else o.points
        verdict.message = render(template, {"note": o.note})
    result.exercises, result.score, result.max_score = score(result.rules, rubric)
    return result


def check_points(points: float | None, rule: str, rubric: Rubric) -> None:
    """Exercise rules earn 0..points; general rules only deduct (0 or less)."""
    if points is None:
        return
    spec = rubric.rules[rule]
    if spec.exercise in EXERCISES and not 0 <= points <= spec.points:
        raise GraderError(f"--points for {rule} must be between 0 and {spec.points:g} (its points in {rubric.path})")
    if spec.exercise not in EXERCISES and points > 0:
        raise GraderError(f"--points for {rule} must be 0 or negative: {spec.exercise} rules only deduct")


def set_override(out_dir: Path, student: str, rule: str, status: str, note: str, *, points: float | None = None,
                 rubric_path: Path | None = None, pdf: bool | None = None) -> Override:
    """Store the instructor's verdict for one rule of one hand-in and re-render. Setting it again (even
    unchanged) confirms it against the current automatic verdict."""
    if status not in STATUSES:
        raise GraderError(f"--status must be one of {', '.join(STATUSES)}, not {status!r}")
    if not note.strip():
        raise GraderError("--note is required: the student reads it next to the corrected verdict")
    with open_gradebook(out_dir) as book:
        resolve_student(book, student)
        result = from_data(GradeResult, book.results([student])[0]["result"])
        rubric = rubric_of(book, result, rubric_path)
        resolve_rule(rule, rubric)
        check_points(points, rule, rubric)
        auto = next((v for v in result.rules if v.id == rule), None)
        override = Override(
            student=student, rule=rule, status=status, note=note.strip(), points=points, created_at=time.time(),
            auto_status=auto.status if auto else "", auto_points=auto.points if auto else None,
            auto_message=auto.message if auto else "",
        )
        book.set_override(override)
    rerender(out_dir, [student], pdf=pdf, rubric_path=rubric_path)
    return override


def clear_override(out_dir: Path, student: str, rule: str, *, rubric_path: Path | None = None,
                   pdf: bool | None = None) -> None:
    """Back to the automatic verdict for one rule, and re-render."""
    with open_gradebook(out_dir) as book:
        resolve_student(book, student)
        if not book.clear_override(student, rule):
            known = [o.rule for o in book.overrides(student)]
            raise _unknown("override", rule, known, f"{student}'s overrides")
    rerender(out_dir, [student], pdf=pdf, rubric_path=rubric_path)


def reconcile(book: Gradebook, result: GradeResult) -> list[Override]:
    """After a re-grade: mark the overrides whose automatic verdict changed "to confirm" (and unmark
    those whose verdict is back to what the instructor saw). Returns the overrides now to confirm."""
    pending = []
    for o in book.overrides(result.student):
        auto = next((v for v in result.rules if v.id == o.rule), None)
        if auto is None:
            continue
        changed = auto.status != o.auto_status or abs(auto.points - (o.auto_points or 0.0)) > _SAME
        updated = dataclasses.replace(o, to_confirm=changed, auto_status_now=auto.status if changed else "",
                                      auto_points_now=auto.points if changed else None)
        if updated != o:
            book.set_override(updated)
        if changed:
            pending.append(updated)
    return pending


def exported_results(out_dir: Path) -> list[GradeResult]:
    """What exports carry: the gradebook's results with the overrides applied; a folder that has only
    results.json (copied without its gradebook) is exported as it is."""
    if (Path(out_dir) / GRADEBOOK).is_file():
        with open_gradebook(out_dir) as book:
            return corrected_results(book)
    return load_results(out_dir)


def corrected_results(book: Gradebook, students: list[str] | None = None,
                      rubric_path: Path | None = None) -> list[GradeResult]:
    """Every stored result with its overrides applied."""
    overrides: dict[str, list[Override]] = {}
    for o in book.overrides():
        overrides.setdefault(o.student, []).append(o)
    rubric_for = _rubrics(book, rubric_path)
    out = []
    for row in book.results(students):
        result = from_data(GradeResult, row["result"])
        if result.student in overrides:
            result = apply_overrides(result, overrides[result.student], rubric_for(result))
        out.append(result)
    return out


@dataclass
class Rerendered:
    reports: list[Path]  # the HTML reports rewritten
    class_pages: dict[str, Path]  # summary, review page and exports
    seconds: float


def rerender(out_dir: Path, students: list[str] | None = None, *, pdf: bool | None = None,
             rubric_path: Path | None = None) -> Rerendered:
    """Rewrite the reports of `students` (all when None), the summary, review page and exports from the
    gradebook with the overrides applied. `pdf=None` rewrites a PDF where one exists."""
    from grader.report import report_filename

    started = time.monotonic()
    out_dir = Path(out_dir)
    with open_gradebook(out_dir) as book:
        results = corrected_results(book, rubric_path=rubric_path)
    reports = []
    for result in results:
        if students is None or result.student in students:
            html = out_dir / report_filename(result.student)
            reports.append(write_report(result, out_dir, pdf=html.with_suffix(".pdf").is_file() if pdf is None else pdf))
    pages = write_class_pages(results, out_dir)
    return Rerendered(reports, pages, time.monotonic() - started)


def write_report(result: GradeResult, out_dir: Path, *, pdf: bool) -> Path:
    """The hand-in's report and the pipeline's per-hand-in JSON, rewritten from a corrected result."""
    from grader.report import render_report

    files = render_report(result, out_dir, pdf=pdf)
    single = Path(out_dir) / "results" / f"{result.student}.json"
    if single.is_file():
        single.write_text(json.dumps(result.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
    return files.html


def write_class_pages(results: list[GradeResult], out_dir: Path, csv_dialect: str | None = None,
                      similarity: dict | None = None) -> dict[str, Path]:
    """index.html with the "Revisar" column, review.html and every export, from corrected results.
    On a re-render (None), `csv_dialect` keeps the dialect the batch wrote grades.csv in, and
    `similarity` (the summary's link) is read back from the batch's similarity.json."""
    from grader.report import render_summary, write_exports
    from grader.review.queue import render_review, review_queue
    from grader.review.similarity_report import similarity_link

    queue = review_queue(results, out_dir)
    if similarity is None:
        similarity = similarity_link(out_dir)
    pages = {"summary": render_summary(results, out_dir, review=queue, similarity=similarity),
             "review": render_review(results, queue, out_dir)}
    if csv_dialect is None:
        csv_dialect = "en"
        try:
            with open(Path(out_dir) / "grades.csv", encoding="utf-8-sig") as fh:
                csv_dialect = "es" if ";" in fh.readline() else "en"
        except OSError:
            pass
    pages.update(write_exports(results, out_dir, csv_dialect=csv_dialect))
    return pages
