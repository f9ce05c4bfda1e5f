"""Grades and feedback back to the course platform, in files it imports as they are.

- Moodle: the grading worksheet the instructor downloaded ("Descargar hoja de calificaciones"),
  filled: only the grade and the feedback-comment cells change (see grader.report.csvcells). The
  importer (assignfeedback_offline) needs "Identifier", "Grade" and "Last modified (grade)" in the
  site's language; "Maximum grade" scales the grade. Rows are matched on the participant id that
  Moodle wrote into the download's folder names ("Participant 1001" <-> "..._1001_assignsubmission_...").
- Moodle feedback files: a ZIP for "Subir múltiples archivos de retroalimentación en un ZIP",
  "{Full Name}_{participantid}_assignfeedback_file/informe.pdf"; Moodle's importer splits each path
  part on "_" and takes the second piece as the participant id.
- Canvas: the gradebook CSV export (header "Student, ID, SIS User ID, SIS Login ID, Section,
  <Assignment> (<id>), ...", a "Points Possible" row), the assignment's column filled with points.
Rows without a hand-in are never touched; hand-ins without a row are listed in the warnings.
"""

from __future__ import annotations

import html
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import GraderError
from grader.report import csvcells
from grader.report.render import report_filename
from grader.report.view import rule_name
from grader.results import GradeResult

# Header names as Moodle writes them in Spanish and in English (get_string of the site language).
MOODLE_HEADERS = {
    "id": ("Identificador", "Identifier"),
    "grade": ("Calificación", "Grade"),
    "max": ("Calificación máxima", "Maximum grade"),
    "modified": ("Última modificación (calificación)", "Last modified (grade)"),
    "comment": ("Comentarios de retroalimentación", "Feedback comments"),
}
MOODLE_REQUIRED = ("id", "grade", "max", "modified")
CANVAS_REQUIRED = ("Student", "ID")
_ASSIGNMENT_RE = re.compile(r"^(?P<name>.*\S)\s*\((?P<id>\d+)\)$")


@dataclass
class ExportReport:
    written: list[Path] = field(default_factory=list)
    filled: int = 0  # rows that got a grade
    warnings: list[str] = field(default_factory=list)  # English, for the instructor


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip().casefold()


def _read(path: Path, report: ExportReport) -> tuple[str, str]:
    """The file's text and its encoding: UTF-8 as the platforms write it, else Latin-1, which maps
    every byte to one character and back, so that a file a spreadsheet re-saved stays byte for byte."""
    if not path.is_file():
        raise GraderError(f"{path}: no such file")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        report.warnings.append(f"{path} is not UTF-8 (re-saved by a spreadsheet?): kept in its own encoding, "
                               "but the platform's import expects UTF-8")
        return raw.decode("latin-1"), "latin-1"


def _write(target: Path, text: str, encoding: str, report: ExportReport) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(text.encode(encoding, errors="replace"))  # only new cells can hold unencodable text
    report.written.append(target)


def _by_platform_id(results: list[GradeResult], platform: str, report: ExportReport) -> dict[str, list[GradeResult]]:
    found: dict[str, list[GradeResult]] = {}
    for r in results:
        if r.record is not None and r.record.platform == platform and r.record.platform_id:
            found.setdefault(r.record.platform_id, []).append(r)
        else:
            report.warnings.append(f"{r.student}: not a {platform.title()} hand-in (no {platform.title()} id "
                                   "in its file names); fill it in by hand")
    return found


def _usable(results: list[GradeResult], pid: str, report: ExportReport) -> GradeResult | None:
    if len(results) > 1:
        report.warnings.append(f"id {pid} is claimed by {len(results)} hand-ins ("
                               + ", ".join(r.student for r in results) + "): row left untouched")
        return None
    if results[0].meta.get("status") == "error":
        report.warnings.append(f"{results[0].student}: the grader failed on this hand-in: row left untouched")
        return None
    return results[0]


def _warn_unmatched(by_id: dict[str, list[GradeResult]], seen: set[str], what: str, id_label: str,
                   report: ExportReport) -> None:
    unmatched = [f"{r.student} ({id_label} {pid})" for pid, rs in by_id.items() if pid not in seen for r in rs]
    if unmatched:
        report.warnings.append(f"{what}: " + ", ".join(unmatched))


def feedback_comment(r: GradeResult, grade: str, maximum: str) -> str:
    """A short Spanish summary for the student; the full report goes with the feedback files."""
    fails = [rule_name(v) for v in r.rules if v.status == "fail"]
    warns = [rule_name(v) for v in r.rules if v.status == "warn"]
    parts = [f"Corrección automática del Trabajo 2: {grade} / {maximum}."]
    if r.errors:
        parts.append(f"{len(r.errors)} problema(s) al cargar o ejecutar la entrega.")
    parts.append(("A revisar: " + "; ".join(fails) + ".") if fails else "Todas las comprobaciones superadas.")
    if warns:
        parts.append("Avisos: " + "; ".join(warns) + ".")
    parts.append("El detalle está en el informe adjunto.")
    # Moodle stores the comment as HTML: the text must not become markup.
    return html.escape(" ".join(parts), quote=False)


# ---------------------------------------------------------------- Moodle

def export_moodle(results: list[GradeResult], out_dir: Path, worksheet: Path,
                  output: Path | None = None) -> ExportReport:
    """OUT/moodle_worksheet.csv (or `output`) and OUT/moodle_feedback.zip for a graded batch."""
    read = ExportReport()
    text, encoding = _read(Path(worksheet), read)
    filled, report = fill_moodle_worksheet(text, results, source=str(worksheet))
    report.warnings[:0] = read.warnings
    _write(Path(output) if output else Path(out_dir) / "moodle_worksheet.csv", filled, encoding, report)
    report.written.append(write_moodle_feedback(results, Path(out_dir), Path(out_dir) / "moodle_feedback.zip",
                                                report))
    return report


def fill_moodle_worksheet(text: str, results: list[GradeResult], source: str = "worksheet") -> tuple[str, ExportReport]:
    """The worksheet with grades and comments filled in; raises GraderError if a column is missing."""
    report = ExportReport()
    delimiter = csvcells.sniff_delimiter(text)
    records = csvcells.parse(text, delimiter)
    header = [_fold(f.value) for f in records[0]] if records else []
    columns = {}
    for key, names in MOODLE_HEADERS.items():
        columns[key] = next((i for i, h in enumerate(header) if h in {_fold(n) for n in names}), None)
    missing = [" / ".join(MOODLE_HEADERS[k]) for k in MOODLE_REQUIRED if columns[k] is None]
    if missing:
        raise GraderError(f"{source}: not a Moodle grading worksheet: missing column(s) "
                          + ", ".join(f'"{m}"' for m in missing))
    if columns["comment"] is None:
        report.warnings.append('no "Feedback comments" column (the comments feedback plugin is off): '
                               "only grades were filled")
    rows = [rec for rec in records[1:] if len(rec) > columns["id"]]
    separator = csvcells.decimal_separator([rec[columns["max"]].value for rec in rows if len(rec) > columns["max"]])
    by_id = _by_platform_id(results, "moodle", report)
    seen: set[str] = set()
    edits: dict[tuple[int, int], str] = {}
    for index, rec in enumerate(records[1:], start=1):
        m = re.search(r"(\d+)\s*$", rec[columns["id"]].value) if len(rec) > columns["id"] else None
        if m is None or m.group(1) not in by_id:
            continue
        pid = m.group(1)
        seen.add(pid)
        r = _usable(by_id[pid], pid, report)
        maximum = csvcells.parse_number(rec[columns["max"]].value) if len(rec) > columns["max"] else None
        if r is None:
            continue
        if maximum is None or not r.max_score:
            report.warnings.append(f"{r.student}: row {index + 1} has no numeric maximum grade (a scale?): "
                                   "row left untouched")
            continue
        grade = csvcells.format_number(maximum * r.score / r.max_score, separator)
        edits[(index, columns["grade"])] = csvcells.spreadsheet_safe(grade)
        if columns["comment"] is not None and len(rec) > columns["comment"]:
            comment = feedback_comment(r, grade, rec[columns["max"]].value.strip())
            edits[(index, columns["comment"])] = csvcells.spreadsheet_safe(comment)
        report.filled += 1
    _warn_unmatched(by_id, seen, "hand-ins without a worksheet row", "participant", report)
    return csvcells.replace(text, edits, records, delimiter), report


_MOODLE_PREFIX_RE = re.compile(r"^([^_]+_\d+)_assignsubmission_")


def moodle_feedback_folder(r: GradeResult) -> str | None:
    """"{Full Name}_{participantid}_assignfeedback_file": the download's prefix, as Moodle wrote it."""
    if r.record is None or r.record.platform != "moodle" or not r.record.platform_id:
        return None
    first = r.record.source_name.split(", ")[0]
    m = _MOODLE_PREFIX_RE.match(first)
    prefix = m.group(1) if m else f"{r.record.display_name.replace('_', ' ')}_{r.record.platform_id}"
    return f"{prefix.replace('/', ' ')}_assignfeedback_file"


def write_moodle_feedback(results: list[GradeResult], out_dir: Path, target: Path,
                          report: ExportReport | None = None) -> Path:
    """The feedback-files ZIP: each Moodle hand-in's report as informe.pdf (and informe.html)."""
    report = report or ExportReport()
    no_pdf = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for r in sorted(results, key=lambda r: r.student):
            folder = moodle_feedback_folder(r)
            if folder is None:
                continue
            for suffix in (".pdf", ".html"):
                source = out_dir / report_filename(r.student, suffix=suffix)
                if source.is_file():
                    zf.write(source, f"{folder}/informe{suffix}")
                elif suffix == ".pdf":
                    no_pdf.append(r.student)
    if no_pdf:
        report.warnings.append("no PDF report (graded with --no-pdf?), only the HTML one goes in the feedback "
                               "ZIP for: " + ", ".join(no_pdf))
    return target


# ---------------------------------------------------------------- Canvas

def export_canvas(results: list[GradeResult], out_dir: Path, gradebook: Path, output: Path | None = None,
                  assignment: str | None = None) -> ExportReport:
    """OUT/canvas_gradebook.csv (or `output`): the gradebook export with the assignment's points."""
    read = ExportReport()
    text, encoding = _read(Path(gradebook), read)
    filled, report = fill_canvas_gradebook(text, results, assignment, source=str(gradebook))
    report.warnings[:0] = read.warnings
    _write(Path(output) if output else Path(out_dir) / "canvas_gradebook.csv", filled, encoding, report)
    return report


def fill_canvas_gradebook(text: str, results: list[GradeResult], assignment: str | None = None,
                          source: str = "gradebook") -> tuple[str, ExportReport]:
    report = ExportReport()
    delimiter = csvcells.sniff_delimiter(text)
    records = csvcells.parse(text, delimiter)
    header = [f.value.strip() for f in records[0]] if records else []
    missing = [name for name in CANVAS_REQUIRED if name not in header]
    if missing:
        raise GraderError(f"{source}: not a Canvas gradebook export: missing column(s) "
                          + ", ".join(f'"{m}"' for m in missing))
    column = _assignment_column(header, assignment, source)
    id_col = header.index("ID")
    possible_row = next((i for i, rec in enumerate(records[1:6], start=1)
                         if rec and rec[0].value.strip() == "Points Possible"), None)
    if possible_row is None or len(records[possible_row]) <= column:
        raise GraderError(f"{source}: no \"Points Possible\" row under the header")
    possible_cell = records[possible_row][column].value
    possible = csvcells.parse_number(possible_cell)
    if possible is None:
        raise GraderError(f"{source}: \"Points Possible\" of {header[column]!r} is not a number")
    separator = csvcells.decimal_separator([possible_cell])
    by_id = _by_platform_id(results, "canvas", report)
    seen: set[str] = set()
    edits: dict[tuple[int, int], str] = {}
    for index, rec in enumerate(records[1:], start=1):
        pid = rec[id_col].value.strip() if len(rec) > max(id_col, column) else ""
        if pid not in by_id:
            continue
        seen.add(pid)
        r = _usable(by_id[pid], pid, report)
        if r is None or not r.max_score:
            continue
        points = csvcells.format_number(possible * r.score / r.max_score, separator)
        edits[(index, column)] = csvcells.spreadsheet_safe(points)
        report.filled += 1
    _warn_unmatched(by_id, seen, "hand-ins without a gradebook row (anonymous grading ids never match)", "user",
                    report)
    return csvcells.replace(text, edits, records, delimiter), report


def _assignment_column(header: list[str], wanted: str | None, source: str) -> int:
    candidates = [(i, m) for i, h in enumerate(header) if (m := _ASSIGNMENT_RE.match(h))]
    if wanted:
        chosen = [i for i, m in candidates if wanted in (m["id"], m["name"]) or _fold(wanted) == _fold(m["name"])]
    else:
        chosen = [i for i, _ in candidates]
    if len(chosen) == 1:
        return chosen[0]
    names = ", ".join(f'"{header[i]}"' for i, _ in candidates) or "none"
    what = f"no assignment column matches {wanted!r}" if wanted else "several assignment columns"
    if not candidates:
        what = "no assignment column (\"Name (id)\")"
    raise GraderError(f"{source}: {what}; choose one with --assignment NAME_OR_ID (columns: {names})")
