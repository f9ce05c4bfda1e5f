"""The "to review" queue: per hand-in, why a human should look, each reason linked to its evidence.

Reasons come from typed facts of the (corrected) result only — run statuses, verdict ids, statuses
and message keys, error stages, overrides — plus the flagged pairs of OUT/similarity.json when the
similarity step wrote one. A reason tied to a rule the instructor has already corrected (and
confirmed) is closed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

from grader.report import environment, report_filename
from grader.report.summary import review_anchor
from grader.report.view import STATUS_ICONS, STATUS_WORDS, fmt_points, rule_name
from grader.results import GradeResult, ReviewItem, Verdict

log = logging.getLogger(__name__)

SIMILARITY_JSON = "similarity.json"
SIMILARITY_HTML = "similarity.html"
# Short Spanish names of the reasons (summary column, review page headings), in the order shown.
KIND_LABELS = {
    "load_error": "error de carga o ejecución",
    "not_trabajo2": "¿otro trabajo?",
    "override_to_confirm": "corrección por confirmar",
    "similarity": "similitud alta",
    "suspicious": "código sospechoso",
    "fits_unrecorded": "entrenamientos no registrados",
    "not_reproducible": "no reproducible",
    "budget": "presupuesto agotado",
    "reported_mismatch": "reportado ≠ reproducido",
    "source_only": "valorado solo por el código",
}
SOURCE_ONLY_KEYS = ("pass_saved", "warn_static")  # rubric keys of exercises graded from source and outputs
_ERROR_STAGES = {"load": "No se pudo cargar la entrega", "grader": "El corrector falló con esta entrega",
                 "capture": "La ejecución se detuvo"}


def load_similarity(out_dir: Path) -> list[dict[str, Any]]:
    """Flagged pairs of OUT/similarity.json ([{"a", "b", "score", "flagged"}, ...]); a missing or
    malformed file means no pairs (the similarity step is optional and written by another command)."""
    path = Path(out_dir) / SIMILARITY_JSON
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return []
    pairs = data if isinstance(data, list) else []
    return [p for p in pairs if isinstance(p, dict) and p.get("flagged") is True
            and isinstance(p.get("a"), str) and isinstance(p.get("b"), str)
            and isinstance(p.get("score"), (int, float))]


def _closed(v: Verdict) -> bool:
    """The instructor corrected this verdict and nothing changed since."""
    return v.override is not None and not v.override.to_confirm


def review_items(result: GradeResult, pairs: list[dict[str, Any]] | None = None) -> list[ReviewItem]:
    report = quote(report_filename(result.student))
    items: list[ReviewItem] = []

    def add(kind: str, text: str, anchor: str) -> None:
        items.append(ReviewItem(kind=kind, text=text, href=f"{report}#{anchor}"))

    for e in result.errors:
        stage = str(e.get("stage"))
        if stage in _ERROR_STAGES:
            add("load_error", f"{_ERROR_STAGES[stage]}: {e.get('message') or e.get('code') or ''}", "errores")
    for v in result.rules:
        if v.override is not None and v.override.to_confirm:
            o = v.override
            add("override_to_confirm",
                f"{rule_name(v)}: corregido a «{STATUS_WORDS.get(o.status, o.status)}»; el veredicto automático ha "
                f"pasado de «{STATUS_WORDS.get(o.auto_status, o.auto_status)}» a "
                f"«{STATUS_WORDS.get(o.auto_status_now, o.auto_status_now)}»", f"rule-{v.id}")
        if _closed(v):
            continue
        if v.key == "fail_not_trabajo2" and not any(i.kind == "not_trabajo2" for i in items):
            add("not_trabajo2", "No parece el Trabajo 2 (no carga Fashion-MNIST ni entrena con sus datos)",
                f"rule-{v.id}")
        if v.key in SOURCE_ONLY_KEYS:
            add("source_only", f"{rule_name(v)}: valorado solo leyendo el código y las salidas guardadas",
                f"rule-{v.id}")
        if v.id == "suspicious_code" and v.status in ("warn", "fail"):
            add("suspicious", f"Código sospechoso: {len(v.evidence) or 1} hallazgo(s)", f"rule-{v.id}")
        if v.id == "fits_recorded" and v.status == "fail":
            add("fits_unrecorded", "Entrenamientos que no llegaron al corrector", f"rule-{v.id}")
        if v.id == "reported_vs_reproduced" and v.status in ("warn", "fail"):
            add("reported_mismatch", "La precisión declarada no coincide con la reproducida", f"rule-{v.id}")
    for run in result.runs:
        name = run.label or run.run_id
        if run.status in ("not_reproducible", "error"):
            add("not_reproducible", f"Entrenamiento «{name}» no reproducible: {run.reason or run.status}",
                f"run-{run.run_id}")
        elif run.status == "budget" and run.cut == "epochs":
            add("budget", f"Entrenamiento «{name}» reentrenado solo {run.epochs_requested} épocas (máximo del corrector)",
                f"run-{run.run_id}")
        elif run.status == "budget":
            add("budget", f"Entrenamiento «{name}» sin reentrenar del todo: presupuesto agotado", f"run-{run.run_id}")
    for p in pairs or []:
        if p.get("flagged") is True and result.student in (p["a"], p["b"]):
            other = p["b"] if p["a"] == result.student else p["a"]
            items.append(ReviewItem(kind="similarity", text=f"Muy parecida a {other} (similitud {p['score']:.2f})",
                                    href=SIMILARITY_HTML))
    order = list(KIND_LABELS)
    return sorted(items, key=lambda i: order.index(i.kind))


def review_queue(results: list[GradeResult], out_dir: Path) -> dict[str, list[ReviewItem]]:
    """Open review items of every hand-in (an empty list: nothing to look at)."""
    pairs = load_similarity(out_dir)
    return {r.student: review_items(r, pairs) for r in results}


def render_review(results: list[GradeResult], queue: dict[str, list[ReviewItem]], out_dir: Path) -> Path:
    """OUT/review.html: the hand-ins with open items, most items first."""
    rows = []
    for r in sorted(results, key=lambda r: (-len(queue.get(r.student, [])), r.student.lower())):
        items = queue.get(r.student, [])
        if items:
            rows.append({"student": r.student, "anchor": review_anchor(r.student),
                         "href": quote(report_filename(r.student)), "score": fmt_points(r.score),
                         "max_score": fmt_points(r.max_score),
                         "reasons": [(KIND_LABELS[i.kind], i.text, i.href) for i in items]})
    html = environment(None).get_template("review.html").render(
        pdf=False, rows=rows, n=len(results), similarity=(Path(out_dir) / SIMILARITY_HTML).is_file())
    path = Path(out_dir) / "review.html"
    path.write_text(html, encoding="utf-8")
    return path


def review_lines(result: GradeResult, items: list[ReviewItem]) -> list[str]:
    """The terminal listing of one hand-in (`grader review OUT STUDENT`): verdicts, then open items."""
    lines = [f"{result.student}: {fmt_points(result.score)} / {fmt_points(result.max_score)}"]
    for v in result.rules:
        mark = ""
        if v.override is not None:
            o = v.override
            mark = f"  [profesor; automático: {o.auto_status_now or o.auto_status}"
            mark += ", POR CONFIRMAR]" if o.to_confirm else "]"
        lines.append(f"  {STATUS_ICONS.get(v.status, '?')} {v.id:<24} {fmt_points(v.points):>6}{mark}")
    lines.append(f"  Por revisar: {len(items)}" if items else "  Nada por revisar.")
    lines += [f"    - [{KIND_LABELS[i.kind]}] {i.text}" for i in items]
    return lines


def queue_lines(results: list[GradeResult], queue: dict[str, list[ReviewItem]]) -> list[str]:
    """The terminal listing of a class (`grader review OUT`): hand-ins with open items, most first."""
    open_ = sorted((r for r in results if queue.get(r.student)),
                   key=lambda r: (-len(queue[r.student]), r.student.lower()))
    lines = [f"{len(open_)} de {len(results)} entregas por revisar"]
    for r in open_:
        lines.append(f"{r.student}: {fmt_points(r.score)} / {fmt_points(r.max_score)}")
        lines += [f"    - [{KIND_LABELS[i.kind]}] {i.text}" for i in queue[r.student]]
    return lines
