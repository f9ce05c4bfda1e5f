"""The report's view model: a GradeResult turned into plain rows the templates only print.

Everything a template shows is computed here (formatting, Spanish labels, grouping), so that templates
stay free of logic and every student-controlled string reaches Jinja as *data* (autoescaped), never as
template source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from grader.report.plots import epochs_text
from grader.results import Evidence, GradeResult, RunResult, StudentRecord, Verdict

EXERCISE_TITLES = {
    "general": "Aspectos generales",
    "ex1": "Ejercicio 1. Unidades de activación",
    "ex2": "Ejercicio 2. Inicialización de parámetros",
    "ex3": "Ejercicio 3. Optimizadores",
    "ex4": "Ejercicio 4. Regularización y red final",
}
STATUS_ICONS = {"pass": "✓", "fail": "✗", "warn": "⚠", "skip": "–"}
STATUS_WORDS = {"pass": "correcto", "fail": "incorrecto", "warn": "aviso", "skip": "omitido"}
RUN_STATUS_WORDS = {
    "ok": "ok",
    "not_reproducible": "no reproducible",
    "budget": "fuera de presupuesto",
    "error": "error",
}
STAGE_WORDS = {"load": "Error al cargar", "capture": "Error al ejecutar", "cell": "Error en el código"}
REPORTED_RULE = "reported_vs_reproduced"
EXCERPT_MAX_LINES = 12
EXCERPT_MAX_CHARS = 1500
_META_LABELS = {
    "seed": "Semilla",
    "budget": "Presupuesto de reentrenamiento",
    "budget_cuts": "Recortado por el presupuesto",
    "rubric": "Rúbrica",
    "grader_version": "Versión del corrector",
    "trace_status": "Estado de la ejecución",
    "kind": "Tipo de entrega",
    "files": "Ficheros",
    "notes": "Notas de carga",
    "capture_notes": "Notas del entorno de ejecución",
    "versions": "Versiones",
    "timings": "Tiempos (s)",
}
_HIDDEN_VALUES = {"fit_index", "model_id", "run_id"}  # the grader's bookkeeping, meaningless to students
_META_HIDDEN = {"rubric_digest", "submission_digest", "recognition"}  # hashes help machines; recognition has its section


def fmt_points(x: float | None) -> str:
    """7.5 -> "7.5", 10.0 -> "10", 7.25 -> "7.25" (at most two decimals, no trailing zeros)."""
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:.2f}".rstrip("0").rstrip(".")


def score_text(points: float | None, max_points: float | None) -> str:
    """"1.5 / 2.5"; a deduction-only item (max 0, e.g. the general protocol rules) shows "-0.75" or nothing."""
    if max_points:
        return f"{fmt_points(points)} / {fmt_points(max_points)}"
    return fmt_points(points) if points else ""


def display_title(exercise: str, title: str) -> str:
    """Rubric titles read "1. Unidades de activación"; the report says "Ejercicio 1. Unidades de activación"."""
    if not title:
        return EXERCISE_TITLES.get(exercise, exercise)
    return f"Ejercicio {title}" if title[0].isdigit() else title


def fmt_pct(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{100 * x:.1f} %"


def location(ev: Evidence) -> str:
    """Where a piece of evidence points, as students read it: what the rule wrote (in the hand-in's own
    terms), else the cell shown 1-based."""
    if ev.where:
        return ev.where
    parts = []
    if ev.cell is not None:
        parts.append(f"celda {ev.cell + 1}")
    if ev.line is not None:
        parts.append(f"línea {ev.line}")
    return ", ".join(parts)


def short_excerpt(text: str) -> str:
    """Cap an excerpt so that one huge cell cannot swamp the report; the text itself stays verbatim."""
    lines = text.rstrip("\n").splitlines()
    clipped = "\n".join(lines[:EXCERPT_MAX_LINES])
    if len(clipped) > EXCERPT_MAX_CHARS:
        clipped = clipped[:EXCERPT_MAX_CHARS]
    if clipped != text.rstrip("\n"):
        clipped += "\n…"
    return clipped


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def rule_name(v: Verdict) -> str:
    """Short name of a rule for tables (rules may carry a `title`; the id always exists)."""
    return getattr(v, "title", "") or v.id


@dataclass
class EvidenceRow:
    where: str
    excerpt: str
    values: list[tuple[str, str]]


@dataclass
class RuleRow:
    id: str
    name: str
    status: str
    icon: str
    status_word: str
    message: str
    score: str  # "1.5 / 2.5", "-0.75" (deduction) or ""
    evidence: list[EvidenceRow]
    automatic: str = ""  # when the instructor corrected it: the grader's own verdict, "✗ incorrecto, 0 / 2.5: ..."


@dataclass
class ExerciseSection:
    id: str
    title: str
    score: str
    fraction: float | None  # 0..1, bar width; None for deduction-only sections (no maximum)
    rules: list[RuleRow] = field(default_factory=list)
    plot: str | None = None


def rule_row(v: Verdict) -> RuleRow:
    evidence = [
        EvidenceRow(
            where=location(ev),
            excerpt=short_excerpt(ev.excerpt) if ev.excerpt else "",
            values=[(str(k), _scalar(x)) for k, x in ev.values.items() if _shown_value(k, x, ev)][:6],
        )
        for ev in v.evidence
    ]
    return RuleRow(
        id=v.id,
        name=rule_name(v),
        status=v.status,
        icon=STATUS_ICONS.get(v.status, "?"),
        status_word=STATUS_WORDS.get(v.status, v.status),
        message=v.message,
        score=score_text(v.points, v.max_points),
        evidence=evidence,
        automatic=_automatic(v),
    )


def _automatic(v: Verdict) -> str:
    """The verdict the grader gave before the instructor corrected it (empty when not corrected)."""
    o = v.override
    if o is None:
        return ""
    status = o.auto_status_now or o.auto_status
    points = o.auto_points_now if o.auto_status_now else o.auto_points
    text = f"{STATUS_ICONS.get(status, '?')} {STATUS_WORDS.get(status, status or 'sin veredicto')}"
    score = score_text(points, v.max_points)
    text += f", {score}" if score else ""
    unchanged = status == o.auto_status  # the message the instructor saw still describes it
    return f"{text}: {o.auto_message}" if o.auto_message and unchanged else text


def _shown_value(key: str, value: Any, ev: Evidence) -> bool:
    """Evidence values worth a student's attention: scalars, not internal ids, not the excerpt again."""
    if key in _HIDDEN_VALUES or not (isinstance(value, (str, int, float, bool)) or value is None):
        return False
    # A long string already quoted in the excerpt (the saved output line) would only repeat it.
    return not (isinstance(value, str) and len(value) >= 20 and value.strip() in ev.excerpt)


def _fraction(points: float, max_points: float) -> float | None:
    return max(0.0, min(1.0, points / max_points)) if max_points else None


def exercise_sections(result: GradeResult, plots: dict[str, str]) -> list[ExerciseSection]:
    """One section per exercise, in rubric order; exercises only seen in verdicts or plots come after."""
    sections: dict[str, ExerciseSection] = {}
    for es in result.exercises:
        sections[es.exercise] = ExerciseSection(
            id=es.exercise,
            title=display_title(es.exercise, es.title),
            score=score_text(es.points, es.max_points),
            fraction=_fraction(es.points, es.max_points),
        )
    for v in result.rules:
        if v.exercise not in sections:
            pts = sum(x.points for x in result.rules if x.exercise == v.exercise)
            mx = sum(x.max_points for x in result.rules if x.exercise == v.exercise)
            sections[v.exercise] = ExerciseSection(
                id=v.exercise,
                title=display_title(v.exercise, ""),
                score=score_text(pts, mx),
                fraction=_fraction(pts, mx),
            )
        sections[v.exercise].rules.append(rule_row(v))
    for ex, uri in plots.items():
        if ex not in sections:
            sections[ex] = ExerciseSection(ex, display_title(ex, ""), "", None)
        sections[ex].plot = uri
    # "general" first: the split and new-model rules matter for every exercise.
    order = ["general", *(k for k in sections if k != "general")]
    return [sections[k] for k in order if k in sections]


def _run_label(r: RunResult) -> str:
    label = r.label or r.run_id
    return f"{label} (final)" if r.is_final and "final" not in label.lower() else label


def _budget_text(r: RunResult) -> str:
    """What the budget did to a run, in the student's language (the English reason is in the result JSON)."""
    if r.cut == "epochs":
        return f"épocas limitadas a {r.epochs_requested} (máximo del corrector)"
    if not r.epochs_run:
        return "sin entrenar, se acabó el tiempo de reentrenamiento"
    return f"{r.epochs_run} de {r.epochs_requested} épocas, se acabó el tiempo de reentrenamiento"


def run_rows(runs: list[RunResult]) -> list[dict[str, str]]:
    rows = []
    for r in runs:
        status = RUN_STATUS_WORDS.get(r.status, r.status)
        if r.status == "budget":
            status = f"{status}: {_budget_text(r)}"
        elif r.status != "ok" and r.reason:
            status = f"{status}: {r.reason}"
        rows.append(
            {
                "id": r.run_id,
                "exercise": r.exercise or "—",
                "label": _run_label(r),
                "epochs": epochs_text(r),
                "best_val": fmt_pct(r.best_val_accuracy),
                "last_val": fmt_pct(r.last_val_accuracy),
                "test": fmt_pct(r.test_accuracy) if r.is_final else "",
                "cached": "sí" if r.cached else "no",
                "status": status,
                "ok": "ok" if r.status == "ok" else "bad",
            }
        )
    return rows


def reported_rows(result: GradeResult) -> list[dict[str, str]]:
    """Rows of the "reproducido vs. reportado" table from the reported_vs_reproduced rule's evidence.

    Evidence values used: `reported` and `reproduced` (fractions in [0, 1]), optional `text` (the saved
    output line the reported value was read from), `metric`, `label`/`run_id`; missing ones show a dash.
    """
    rows = []
    for v in result.rules:
        if v.id != REPORTED_RULE:
            continue
        for ev in v.evidence:
            vals = ev.values
            if "reported" not in vals and "reproduced" not in vals:
                continue
            rep, repro = _as_float(vals.get("reported")), _as_float(vals.get("reproduced"))
            diff = f"{100 * (repro - rep):+.1f} pp" if rep is not None and repro is not None else "—"
            rows.append(
                {
                    "what": str(vals.get("label") or vals.get("run_id") or "red final"),
                    "text": str(vals.get("text") or ""),
                    "metric": str(vals.get("metric") or "—"),
                    "where": location(ev),
                    "reported": fmt_pct(rep),
                    "reproduced": fmt_pct(repro),
                    "diff": diff,
                    "status": v.status,
                    "icon": STATUS_ICONS.get(v.status, "?"),
                }
            )
    return rows


def _as_float(x: Any) -> float | None:
    try:
        return None if x is None else float(x)
    except (TypeError, ValueError):
        return None


def meta_rows(meta: dict[str, Any]) -> list[tuple[str, str]]:
    """The run's facts (seed, versions, budget, timings, ...), known keys first with Spanish labels."""
    keys = [k for k in _META_LABELS if k in meta] + sorted(k for k in meta if k not in _META_LABELS)
    rows = []
    for k in keys:
        if k in _META_HIDDEN:
            continue
        value = meta[k]
        if k == "timings" and isinstance(value, dict) and value and not any("total" in t for t in value):
            numbers = [x for x in value.values() if isinstance(x, (int, float))]
            value = {**value, "total": round(sum(numbers), 2)}
        if isinstance(value, dict):
            text = ", ".join(f"{a} {_scalar(b)}" for a, b in value.items())
        elif isinstance(value, (list, tuple)):
            text = ", ".join(str(x) for x in value)
        else:
            text = _scalar(value)
        if text:
            rows.append((_META_LABELS.get(k, k), text))
    return rows


def error_rows(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Load/capture/cell errors, worded for the student."""
    rows = []
    for e in errors:
        ev = Evidence(cell=e.get("cell"), line=e.get("line"))
        where = location(ev) or str(e.get("file") or "")
        rows.append(
            {
                "stage": STAGE_WORDS.get(str(e.get("stage")), str(e.get("stage") or "error")),
                "code": str(e.get("code") or ""),
                "message": str(e.get("message") or ""),
                "where": where,
                "traceback": short_excerpt(str(e.get("traceback") or "")),
                "detail": str(e.get("detail") or ""),
            }
        )
    return rows


def _final_facts(final: dict[str, Any]) -> list[tuple[str, str]]:
    labels = {"val_accuracy": "Precisión de validación (mejor época)", "test_accuracy": "Precisión en test",
              "tested_val_accuracy": "Precisión de validación de los pesos evaluados en test",
              "tested_epoch": "Época de los pesos evaluados en test", "epochs": "Épocas"}
    rows = []
    for key, label in labels.items():
        value = final.get(key)
        if value is not None:
            rows.append((label, fmt_pct(value) if "accuracy" in key else _scalar(value)))
    return rows


PLATFORM_NAMES = {"moodle": "Moodle", "canvas": "Canvas"}


def record_facts(record: StudentRecord | None) -> dict[str, Any] | None:
    """Who handed the hand-in in, for the report header and the class summary (None: a plain file)."""
    if record is None or (record.platform == "folder" and not record.late):
        return None  # a plain file or folder: its id already is its name
    platform = PLATFORM_NAMES.get(record.platform, "")
    where = f"{platform} {record.platform_id}" if platform and record.platform_id else platform
    return {"name": record.display_name, "where": where, "late": record.late,
            "line": " · ".join(p for p in (record.display_name, where) if p)}


_DECISIONS = {"trabajo2": "Reconocida como el Trabajo 2", "other": "No parece el Trabajo 2",
              "unknown": "Sin indicios claros; se corrige como el Trabajo 2"}


def recognition_facts(found: dict[str, Any] | None) -> dict[str, Any] | None:
    """Why the hand-in was (not) taken for Trabajo 2 (grader.source.recognize), for the report."""
    if not isinstance(found, dict) or found.get("decision") not in _DECISIONS:
        return None
    reasons = [str(x) for x in found.get("evidence", []) + found.get("against", [])]
    if found["decision"] == "trabajo2" and not found.get("data_loaded"):
        reasons.append("el código no carga los datos: los ejercicios se valoran leyendo el código")
    return {"decision": _DECISIONS[found["decision"]], "reasons": reasons}


def unverified_points(result: GradeResult) -> float:
    """Points of skipped checks when the quick budget cut something (a skip scores 0): what
    `grader check --full` may still give. 0 otherwise."""
    if result.meta.get("budget") != "quick" or not result.meta.get("budget_cuts"):
        return 0.0
    return sum(v.max_points for v in result.rules if v.status == "skip" and v.max_points > 0)


def report_context(result: GradeResult, plots: dict[str, str], *, pdf: bool) -> dict[str, Any]:
    counts = {s: sum(1 for v in result.rules if v.status == s) for s in STATUS_ICONS}
    unverified = unverified_points(result)
    return {
        "student": result.student,
        "record": record_facts(result.record),
        "score": fmt_points(result.score),
        "max_score": fmt_points(result.max_score),
        "fraction": max(0.0, min(1.0, result.score / result.max_score)) if result.max_score else 0.0,
        "counts": counts,
        "reviewed": sum(1 for v in result.rules if v.override is not None),
        "unverified": fmt_points(unverified) if unverified else "",
        "icons": STATUS_ICONS,
        "sections": exercise_sections(result, plots),
        "runs": run_rows(result.runs),
        "reported": reported_rows(result),
        "final": _final_facts(result.final or {}),
        "meta": meta_rows(result.meta),
        "recognition": recognition_facts(result.meta.get("recognition")),
        "errors": error_rows(result.errors),
        "pdf": pdf,
    }
