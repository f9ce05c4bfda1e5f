"""Machine-readable exports of a batch: grades.csv, results.json, junit.xml and Gradescope results.

Formats (keep them stable; other tools read them):

- grades.csv: UTF-8 *with* BOM (Excel otherwise shows "Ã³" for "ó"; Python reads it with
  encoding="utf-8-sig"), comma-separated, dot decimals, one row per hand-in sorted by student id.
  Columns, always in this order: student, score, max_score, grade_10, ex1, ex2, ex3, ex4, general,
  failed_rules (ids joined by ";"), errors (count of load/capture/cell errors), feedback (Spanish summary).
  An exercise a result has no score for is left empty. With `csv_dialect="es"` (for a Spanish-locale
  Excel, which opens a comma CSV as one column): ";" separator and decimal comma, same columns.
  Text cells that a spreadsheet would read
  as a formula (starting with =, +, -, @, tab or carriage return) start with a single quote
  (`spreadsheet_safe`); number cells are never changed.
- results.json: {"format": "grader-results", "version": 1, "results": [GradeResult.to_dict(), ...]}.
- junit.xml: <testsuites> with one <testsuite name=student> per hand-in and one <testcase> per rule:
  fail -> <failure>, warn -> passes with the message in <system-out>, skip -> <skipped>; load/capture
  errors become one extra <testcase name="load_and_run"> with an <error>.
- gradescope/<student>/results.json: {"score", "max_score", "output", "tests": [{"name", "score",
  "max_score", "status" ("passed"|"failed"), "output"}]}; a skipped rule is "passed" with 0/0 points
  and its message prefixed "Omitida:" (Gradescope knows no "skipped").
"""

from __future__ import annotations

import csv
import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from grader.report.csvcells import spreadsheet_safe
from grader.report.render import report_filename
from grader.report.view import location
from grader.results import GROUPS, GradeResult, Verdict

CSV_COLUMNS = ("student", "score", "max_score", "grade_10", *GROUPS, "failed_rules", "errors", "feedback")
# XML 1.0 cannot carry most control characters; a student's excerpt may contain them.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


CSV_DIALECTS = {"en": (",", "."), "es": (";", ",")}  # (separator, decimal mark)


def write_exports(results: list[GradeResult], out_dir: Path, *, csv_dialect: str = "en") -> dict[str, Path]:
    """Write all exports; return {"grades_csv", "results_json", "junit_xml", "gradescope_dir"} -> path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ordered = sorted(results, key=lambda r: r.student.lower())
    return {
        "grades_csv": write_csv(ordered, out_dir / "grades.csv", dialect=csv_dialect),
        "results_json": write_json(ordered, out_dir / "results.json"),
        "junit_xml": write_junit(ordered, out_dir / "junit.xml"),
        "gradescope_dir": write_gradescope(ordered, out_dir / "gradescope"),
    }


def _num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if math.isfinite(x) else ""


def json_safe(value: Any) -> Any:
    """NaN/inf (a diverged run's loss) become null: strict JSON readers (browsers, jq) reject NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def feedback_summary(r: GradeResult) -> str:
    """One Spanish line for the gradebook: what failed, what to check."""
    fails = [v for v in r.rules if v.status == "fail"]
    warns = [v for v in r.rules if v.status == "warn"]
    parts = []
    if r.errors:
        parts.append(f"{len(r.errors)} error(es) al cargar o ejecutar la entrega")
    if fails:
        parts.append("Fallos: " + "; ".join(f"{v.id} ({v.exercise})" for v in fails))
    if warns:
        parts.append("Avisos: " + "; ".join(v.id for v in warns))
    return ". ".join(parts) + "." if parts else "Todas las comprobaciones superadas."


def write_csv(results: list[GradeResult], path: Path, *, dialect: str = "en") -> Path:
    separator, mark = CSV_DIALECTS[dialect]

    def num(x: float) -> str:
        return _num(x).replace(".", mark)

    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, delimiter=separator)
        writer.writerow(CSV_COLUMNS)
        for r in results:
            points = {es.exercise: es.points for es in r.exercises}
            writer.writerow(
                [
                    spreadsheet_safe(r.student),
                    num(r.score),
                    num(r.max_score),
                    num(10 * r.score / r.max_score) if r.max_score else "",
                    *(num(points[c]) if c in points else "" for c in GROUPS),
                    spreadsheet_safe(";".join(v.id for v in r.rules if v.status == "fail")),
                    len(r.errors),
                    spreadsheet_safe(feedback_summary(r)),
                ]
            )
    return path


def write_json(results: list[GradeResult], path: Path) -> Path:
    payload = {"format": "grader-results", "version": 1, "results": [json_safe(r.to_dict()) for r in results]}
    text = json.dumps(payload, indent=1, ensure_ascii=False, default=str, allow_nan=False)
    path.write_text(text, encoding="utf-8")
    return path


def _xml_text(text: object) -> str:
    return _XML_ILLEGAL.sub("\ufffd", str(text))


def write_junit(results: list[GradeResult], path: Path) -> Path:
    root = ET.Element("testsuites", name="grader")
    for r in results:
        suite = ET.SubElement(root, "testsuite", name=_xml_text(r.student))
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="score", value=_num(r.score))
        ET.SubElement(props, "property", name="max_score", value=_num(r.max_score))
        n_fail = n_skip = n_err = 0
        if r.errors:
            n_err = 1
            case = ET.SubElement(suite, "testcase", name="load_and_run", classname=_xml_text(r.student))
            detail = "\n".join(f"{e.get('stage')}: {e.get('code')}: {e.get('message')}" for e in r.errors)
            ET.SubElement(case, "error", message=_xml_text(detail.splitlines()[0])).text = _xml_text(detail)
        for v in r.rules:
            case = ET.SubElement(
                suite, "testcase", name=_xml_text(v.id), classname=_xml_text(f"{r.student}.{v.exercise}")
            )
            text = _xml_text(_verdict_output(v))
            if v.status == "fail":
                n_fail += 1
                ET.SubElement(case, "failure", message=_xml_text(v.message), type=v.severity).text = text
            elif v.status == "skip":
                n_skip += 1
                ET.SubElement(case, "skipped", message=_xml_text(v.message))
            elif v.status == "warn":
                ET.SubElement(case, "system-out").text = "AVISO: " + text
        suite.set("tests", str(len(r.rules) + n_err))
        suite.set("failures", str(n_fail))
        suite.set("errors", str(n_err))
        suite.set("skipped", str(n_skip))
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def _verdict_output(v: Verdict) -> str:
    lines = [f"[{v.status}] {_num(v.points)}/{_num(v.max_points)} {v.message}"]
    for ev in v.evidence:
        where = location(ev)
        if where:
            lines.append(f"  en {where}")
        if ev.excerpt:
            lines.extend("    " + line for line in ev.excerpt.splitlines()[:12])
    return "\n".join(lines)


def write_gradescope(results: list[GradeResult], folder: Path) -> Path:
    for r in results:
        tests = []
        for v in r.rules:
            output = _verdict_output(v)
            if v.status == "skip":
                output = "Omitida: " + output
            tests.append(
                {
                    "name": v.id if v.exercise == "general" else f"{v.exercise}: {v.id}",
                    "score": v.points,
                    "max_score": v.max_points,
                    "status": "failed" if v.status == "fail" else "passed",
                    "output": output,
                }
            )
        payload = {"score": r.score, "max_score": r.max_score, "output": feedback_summary(r), "tests": tests}
        target = folder / report_filename(r.student, suffix="")
        target.mkdir(parents=True, exist_ok=True)
        text = json.dumps(json_safe(payload), indent=1, ensure_ascii=False, allow_nan=False)
        (target / "results.json").write_text(text, encoding="utf-8")
    return folder
