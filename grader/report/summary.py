"""The instructor's class summary: out_dir/index.html with every hand-in, a histogram and rule statistics."""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from markupsafe import Markup

from grader.report.render import environment, report_filename
from grader.report.view import EXERCISE_TITLES, STAGE_WORDS, fmt_points, record_facts, rule_name
from grader.results import GradeResult, ReviewItem

log = logging.getLogger(__name__)

HIST_BINS = 10  # grades are binned on a 0-10 scale whatever the rubric's maximum is


def render_summary(
    results: list[GradeResult],
    out_dir: Path,
    report_links: dict[str, str] | None = None,
    *,
    template_dir: Path | None = None,
    review: dict[str, list[ReviewItem]] | None = None,
    similarity: dict[str, Any] | None = None,
) -> Path:
    """Write out_dir/index.html; links default to the file names render_report() writes. `review` is
    the "to review" queue (grader.review.queue) shown in the "Revisar" column; `similarity`
    ({"href", "pairs", "flagged"}) links the batch's similarity report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    links = report_links or {}
    env = environment(Path(template_dir) if template_dir else None)
    html = env.get_template("summary.html").render(summary_context(results, links, review or {}, similarity))
    path = out_dir / "index.html"
    path.write_text(html, encoding="utf-8")
    return path


def exercise_columns(results: list[GradeResult]) -> list[str]:
    """Exercise ids in first-seen order, "general" first, so that columns line up across students."""
    seen: dict[str, None] = {}
    for r in results:
        for es in r.exercises:
            seen.setdefault(es.exercise)
    order = sorted(seen, key=lambda ex: (ex != "general", list(seen).index(ex)))
    return order


def safe_href(link: str | None, student: str) -> str:
    """The caller's link if it is relative or http(s); else the default report file name.

    Links are often built from student ids, and an id like "javascript:alert(1)//" must not become a
    clickable script in the instructor's browser.
    """
    default = quote(report_filename(student))
    if not link:
        return default
    scheme = urlsplit(link).scheme.lower()
    if scheme and scheme not in ("http", "https"):
        log.warning("summary: ignoring report link with scheme %r for %r", scheme, student)
        return default
    return link


def review_anchor(student: str) -> str:
    """The id of a hand-in's section in review.html (file-name safe, like its report)."""
    return "h-" + report_filename(student, suffix="")


def grade10(r: GradeResult) -> float:
    return 10 * r.score / r.max_score if r.max_score else 0.0


def student_rows(results: list[GradeResult], links: dict[str, str], columns: list[str],
                 review: dict[str, list[ReviewItem]] | None = None) -> list[dict[str, Any]]:
    rows = []
    for r in sorted(results, key=lambda r: r.student.lower()):
        points = {es.exercise: es for es in r.exercises}
        items = (review or {}).get(r.student, [])
        rows.append(
            {
                "student": r.student,
                "record": record_facts(r.record),
                "href": safe_href(links.get(r.student), r.student),
                "score": fmt_points(r.score),
                "max_score": fmt_points(r.max_score),
                "sort_grade": f"{grade10(r):.4f}",
                "cells": [
                    (fmt_points(points[c].points), f"{points[c].points:.4f}") if c in points else ("—", "-1")
                    for c in columns
                ],
                "problems": [rule_name(v) for v in r.rules if v.status == "fail"],
                "warnings": sum(1 for v in r.rules if v.status == "warn"),
                "errors": [f"{STAGE_WORDS.get(str(e.get('stage')), 'Error')}: {e.get('code') or ''}" for e in r.errors],
                "review": [i.text for i in items],
                "review_href": "review.html#" + quote(review_anchor(r.student)),
                "reviewed": sum(1 for v in r.rules if v.override is not None),
            }
        )
    return rows


def rule_stats(results: list[GradeResult]) -> list[dict[str, Any]]:
    """How often each rule failed or warned, most failed first."""
    fails: Counter[str] = Counter()
    warns: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    names: dict[str, tuple[str, str]] = {}
    for r in results:
        for v in r.rules:
            names.setdefault(v.id, (rule_name(v), v.exercise))
            seen[v.id] += 1
            fails[v.id] += v.status == "fail"
            warns[v.id] += v.status == "warn"
    rows = [
        {
            "id": rid,
            "name": names[rid][0],
            "exercise": names[rid][1],
            "fails": fails[rid],
            "warns": warns[rid],
            "seen": seen[rid],
            "fraction": fails[rid] / seen[rid],
        }
        for rid in seen
    ]
    return sorted(rows, key=lambda row: (-row["fails"], -row["warns"], row["id"]))


def histogram_svg(grades: list[float], width: int = 560, height: int = 200) -> Markup:
    """Inline SVG bar chart of grades on 0..10 (bins [0,1), ..., [9,10]). Only numbers go into it."""
    counts = [0] * HIST_BINS
    for g in grades:
        counts[min(HIST_BINS - 1, max(0, int(g)))] += 1
    top = max(counts) or 1
    pad_l, pad_r, pad_b, pad_t = 16, 16, 24, 16
    bw = (width - pad_l - pad_r) / HIST_BINS
    plot_h = height - pad_b - pad_t
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="hist" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="Histograma de notas">'
    ]
    for i, c in enumerate(counts):
        h = plot_h * c / top
        x = pad_l + i * bw
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{pad_t + plot_h - h:.1f}" width="{bw - 4:.1f}" height="{h:.1f}" fill="#2457a6">'
            f"<title>{i}–{i + 1}: {c}</title></rect>"
        )
        if c:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{pad_t + plot_h - h - 2:.1f}" text-anchor="middle" font-size="11">{c}</text>')
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" font-size="11">{i}</text>')
    parts.append(f'<text x="{pad_l + HIST_BINS * bw:.1f}" y="{height - 6}" text-anchor="middle" font-size="11">10</text>')
    parts.append(
        f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - pad_r}" y2="{pad_t + plot_h}" stroke="#5b6573"/></svg>'
    )
    return Markup("".join(parts))


def _short_title(exercise: str) -> str:
    if exercise == "general":
        return "General"
    if exercise.startswith("ex") and exercise[2:].isdigit():
        return f"Ej. {exercise[2:]}"
    return EXERCISE_TITLES.get(exercise, exercise)


def summary_context(results: list[GradeResult], links: dict[str, str],
                    review: dict[str, list[ReviewItem]] | None = None,
                    similarity: dict[str, Any] | None = None) -> dict[str, Any]:
    columns = exercise_columns(results)
    grades = [grade10(r) for r in results]
    return {
        "pdf": False,
        "n": len(results),
        "mean": f"{statistics.fmean(grades):.2f}" if grades else "—",
        "median": f"{statistics.median(grades):.2f}" if grades else "—",
        "passed": sum(1 for g in grades if g >= 5),
        "with_errors": sum(1 for r in results if r.errors),
        "late": sum(1 for r in results if r.record is not None and r.record.late),
        "columns": [(c, _short_title(c)) for c in columns],
        "rows": student_rows(results, links, columns, review),
        "to_review": sum(1 for items in (review or {}).values() if items),
        "rules": rule_stats(results),
        "histogram": histogram_svg(grades),
        "similarity": similarity,
    }
