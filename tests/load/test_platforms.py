"""Moodle and Canvas: "download all" ZIPs in, worksheet / gradebook / feedback ZIP out (fast tests).

The fixtures in tests/files/platforms are written by make_fixtures.py after the platforms' formats;
the end-to-end round trip (real grading) is in test_platforms_roundtrip.py.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import sqlite3
import zipfile
from pathlib import Path

import pytest

from grader.cli import main
from grader.gradebook import Gradebook, load_results
from grader.load import find_submissions
from grader.load.platforms import PlatformName, parse_name
from grader.report import csvcells, render_report, render_summary, write_exports
from grader.report.exports import CSV_COLUMNS
from grader.report.platforms import (
    export_moodle,
    fill_canvas_gradebook,
    fill_moodle_worksheet,
    write_moodle_feedback,
)
from grader.report.sample import HOSTILE, sample_result
from grader.results import StudentRecord
from tests.builders import FILES as TEST_FILES
from tests.files.platforms import make_fixtures

FILES = TEST_FILES / "platforms"


def handins(name: str, tmp_path: Path) -> dict[str, object]:
    return {s.student: s for s in find_submissions(FILES / name, workdir=tmp_path / "work")}


def result(student: str, score: float, platform: str | None = None, pid: str | None = None,
           name: str = "", source: str = "", late: bool = False):
    r = sample_result(student)
    record = StudentRecord(name or student, platform, pid, late, source) if platform else None
    return dataclasses.replace(r, score=score, max_score=10.0, record=record)


def test_committed_fixtures_match_the_generator(tmp_path: Path) -> None:
    for path in make_fixtures.write_all(tmp_path):
        assert path.read_bytes() == (FILES / path.name).read_bytes(), (
            f"{path.name} is stale: run `python tests/files/platforms/make_fixtures.py`")


@pytest.mark.parametrize("name, is_dir, expected", [
    ("Ana García_1001_assignsubmission_file", True, PlatformName("moodle", "Ana García", "1001", stem="Ana García")),
    ("Ana García_1001_assignsubmission_file_", True, PlatformName("moodle", "Ana García", "1001", stem="Ana García")),
    ("Ana García_1001_assignsubmission_file_ej_1.py", False,
     PlatformName("moodle", "Ana García", "1001", original="ej_1.py", stem="Ana García")),
    ("Ana García_1001_assignsubmission_onlinetext", True,
     PlatformName("moodle", "Ana García", "1001", text=True, stem="Ana García")),
    ("Grupo A-Ana García_1001_assignsubmission_file_", True,  # 3.x team: group and member
     PlatformName("moodle", "Grupo A-Ana García", "1001", stem="Grupo A-Ana García")),
    ("Grupo por defecto_assignsubmission_file", True,  # 4.x default team: no group id
     PlatformName("moodle", "Grupo por defecto", None, stem="Grupo por defecto")),
    ("Participante_77_assignsubmission_file", True,
     PlatformName("moodle", "Participante 77", "77", stem="Participante")),
    ("garcialopezana_LATE_20011_900011_Trabajo 2.ipynb", False,
     PlatformName("canvas", "garcialopezana", "20011", late=True, original="Trabajo 2.ipynb", stem="garcialopezana")),
    ("anon_Bc4dE_900011_t.ipynb", False,
     PlatformName("canvas", "Anónimo Bc4dE", "Bc4dE", original="t.ipynb", stem="anon")),
    ("Ana\u202eGarcía_1001_assignsubmission_file", True,  # a bidi override never reaches a report
     PlatformName("moodle", "AnaGarcía", "1001", stem="AnaGarcía")),
    ("Ana García_1001_assignsubmission_file_", False, None),  # a file needs its own name after the prefix
    ("Ana García_1001_assignsubmission_file_x", True, None),
    ("garcialopezana_2001_90001_t.ipynb", True, None),  # Canvas writes files only
    ("GarciaAna_2001_90001_t.ipynb", False, None),  # Canvas names are lower case
    ("alumno_1_2_x.ipynb", False, None),
    ("trabajo2.ipynb", False, None),
])
def test_parse_platform_names(name, is_dir, expected):
    assert parse_name(name, is_dir) == expected


@pytest.mark.parametrize("zip_name, files", [
    ("moodle4_folders.zip", {"Ana García López_1001": ["trabajo2.ipynb"],
                             "Jorge Pérez Núñez_1002": ["entrega/trabajo2.ipynb"],
                             "Lucía Martín_1003": ["trabajo2.ipynb"]}),
    ("moodle3_folders.zip", {"Ana García López_1001": ["trabajo2.ipynb"],
                             "Jorge Pérez Núñez_1002": ["entrega.zip/trabajo2.ipynb"]}),
    ("moodle_flat.zip", {"Ana García López_1001": ["ej1.py", "ej2.py"],
                         "Jorge Pérez Núñez_1002": ["trabajo2.ipynb"],
                         "Lucía Martín_1003": ["Lucía Martín_1003_assignsubmission_onlinetext_onlinetext.html"]}),
])
def test_moodle_layouts_give_one_handin_per_participant(zip_name, files, tmp_path):
    subs = handins(zip_name, tmp_path)
    assert {k: s.files for k, s in subs.items()} == files
    ana = subs["Ana García López_1001"]
    assert ana.record == StudentRecord("Ana García López", "moodle", "1001", False, ana.record.source_name)
    assert ana.record.source_name.startswith("Ana García López_1001_assignsubmission_file")
    assert ana.load_error is None and ana.cells


def test_online_text_is_noted_and_never_graded_as_code(tmp_path):
    lucia = handins("moodle4_folders.zip", tmp_path)["Lucía Martín_1003"]
    assert lucia.files == ["trabajo2.ipynb"] and lucia.load_error is None
    assert any("onlinetext.html" in n and "no se corrige como código" in n for n in lucia.notes)
    only_text = handins("moodle_flat.zip", tmp_path)["Lucía Martín_1003"]
    assert only_text.cells == [] and only_text.load_error is not None
    assert any("texto en línea" in n for n in only_text.notes)


def test_blind_marking_and_teams(tmp_path):
    blind = handins("moodle_blind.zip", tmp_path)
    assert {k: (s.record.display_name, s.record.platform_id) for k, s in blind.items()} == {
        "Participante_5001": ("Participante 5001", "5001"), "Participant_5002": ("Participant 5002", "5002")}
    teams = handins("moodle_team.zip", tmp_path)
    assert {k: s.record.display_name for k, s in teams.items()} == {"Grupo A_71": "Grupo A", "Grupo B_72": "Grupo B"}


def test_canvas_late_several_files_text_and_anonymous(tmp_path):
    subs = handins("canvas_submissions.zip", tmp_path)
    assert {k: (s.files, s.record.late) for k, s in subs.items()} == {
        "garcialopezana_2001": (["trabajo2.ipynb"], False),
        "pereznunezjorge_2002": (["ej1.py", "ej2.py"], True),
        "martínlucía_2003": (["trabajo2-1.ipynb"], False)}
    assert subs["pereznunezjorge_2002"].record.platform == "canvas"
    assert any("texto en línea de Canvas" in n for n in subs["martínlucía_2003"].notes)
    anon = handins("canvas_anonymous.zip", tmp_path)
    assert {k: (s.record.display_name, s.record.late) for k, s in anon.items()} == {
        "anon_Bc4dE": ("Anónimo Bc4dE", False), "anon_Xy7Qz": ("Anónimo Xy7Qz", True)}


def test_mixed_platforms_each_file_still_a_handin_with_a_note(tmp_path):
    subs = handins("mixed_platforms.zip", tmp_path)
    assert set(subs) == {"Ana García López_1001", "pereznunezjorge_2002", "entrega_suelta"}
    assert subs["entrega_suelta"].record.platform == "folder"  # a plain file, not a platform hand-in
    assert all(s.notes and s.load_error is None for s in subs.values())
    assert "mezcla nombres de Canvas y Moodle" in subs["pereznunezjorge_2002"].notes[-1]


def test_repeated_participant_id_keeps_both_and_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        subs = handins("moodle_repeated_id.zip", tmp_path)
    assert len(subs) == 2 and {s.record.platform_id for s in subs.values()} == {"1001"}
    assert {len(s.cells) for s in subs.values()} == {5}
    assert all("1001" in s.notes[-1] for s in subs.values())
    assert "appears in 2 hand-ins" in caplog.text


def test_plain_folders_keep_file_name_ids(tmp_path):
    folder = tmp_path / "entregas"
    folder.mkdir()
    for name in ("alumno_1_2_x.ipynb", "Maria Lopez.ipynb"):
        (folder / name).write_bytes(make_fixtures.notebook(8))
    subs = find_submissions(folder, workdir=tmp_path / "work")
    assert {s.student: (s.record.platform, s.record.platform_id) for s in subs} == {
        "alumno_1_2_x": ("folder", None), "Maria Lopez": ("folder", None)}


def test_lone_moodle_folder_is_one_participant_whatever_it_holds(tmp_path):
    folder = tmp_path / "descarga" / "Ana García López_1001_assignsubmission_file"
    for part in ("ej1", "ej2"):
        (folder / part).mkdir(parents=True)
        (folder / part / "cuaderno.ipynb").write_bytes(make_fixtures.notebook(8))
    subs = find_submissions(tmp_path / "descarga", workdir=tmp_path / "work")
    assert [(s.student, s.files) for s in subs] == [
        ("Ana García López_1001", ["ej1/cuaderno.ipynb", "ej2/cuaderno.ipynb"])]


def graded(tmp_path: Path) -> list:
    return [result("Ana García López_1001", 7.5, "moodle", "1001", "Ana García López",
                   "Ana García López_1001_assignsubmission_file"),
            result("Jorge Pérez Núñez_1002", 10.0, "moodle", "1002", "Jorge Pérez Núñez",
                   "Jorge Pérez Núñez_1002_assignsubmission_file"),
            result("Participante_1009", 4.0, "moodle", "1009", "Participante 1009",
                   "Participante_1009_assignsubmission_file"),
            result("suelto", 5.0)]


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))


@pytest.mark.parametrize("sheet, grades", [("moodle_worksheet_es.csv", ("7,50", "10,00")),
                                           ("moodle_worksheet_en.csv", ("75.00", "100.00"))])
def test_worksheet_only_grade_and_comment_change(sheet, grades, tmp_path):
    original = (FILES / sheet).read_bytes().decode("utf-8")
    filled, report = fill_moodle_worksheet(original, graded(tmp_path))
    before, after = rows_of(original), rows_of(filled)
    assert len(before) == len(after) and before[0] == after[0]
    grade_col, comment_col = 4, 9
    for old, new in zip(before[1:], after[1:]):
        changed = {i for i, (a, b) in enumerate(zip(old, new)) if a != b}
        assert changed <= {grade_col, comment_col} and len(old) == len(new)
    assert [r[grade_col] for r in after[1:]] == [grades[0], grades[1], "", ""]
    assert after[1][comment_col].startswith(f"Corrección automática del Trabajo 2: {grades[0]} / ")
    assert after[4] == before[4]  # no hand-in: untouched (its comment has a quote, a comma and a line break)
    assert report.filled == 2
    assert any("1009" in w for w in report.warnings) and any("suelto" in w for w in report.warnings)
    # Byte level: the BOM and the line ends as downloaded; every other field's raw text identical.
    assert filled.startswith("\ufeff") == original.startswith("\ufeff")
    assert filled.count("\r\n") == original.count("\r\n") and filled.count("\n") == original.count("\n")
    old_fields, new_fields = csvcells.parse(original, ","), csvcells.parse(filled, ",")
    for r, (a, b) in enumerate(zip(old_fields, new_fields)):
        for c, (fa, fb) in enumerate(zip(a, b)):
            if (r in (1, 2)) and c in (grade_col, comment_col):
                continue
            assert original[fa.start:fa.end] == filled[fb.start:fb.end]


def test_worksheet_resaved_by_a_spreadsheet_keeps_its_bytes(tmp_path):
    raw = (FILES / "moodle_worksheet_es.csv").read_text(encoding="utf-8-sig").encode("cp1252")
    (tmp_path / "hoja.csv").write_bytes(raw)
    report = export_moodle(graded(tmp_path), tmp_path, tmp_path / "hoja.csv")
    out = (tmp_path / "moodle_worksheet.csv").read_bytes()
    assert "not UTF-8" in report.warnings[0] and report.filled == 2
    assert out.startswith(raw[:raw.index(b"\n") + 1])  # the header, "Calificación" in cp1252
    assert out.endswith(raw[raw.index(b'"Participante 1004"'):])
    assert rows_of(out.decode("cp1252"))[1][4] == "7,50"


def test_missing_column_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    write_exports(graded(tmp_path), out)
    before = sorted(p.name for p in out.iterdir())
    code = main(["export", "moodle", str(out), "--worksheet", str(FILES / "moodle_worksheet_missing_column.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert '"Calificación máxima / Maximum grade"' in err and "Last modified (grade)" in err
    assert sorted(p.name for p in out.iterdir()) == before


def test_export_moodle_command_writes_worksheet_and_feedback_zip(tmp_path, capsys):
    out = tmp_path / "out"
    results = graded(tmp_path)
    results[1] = dataclasses.replace(results[1], student=HOSTILE)
    write_exports(results, out)
    for r in results:
        render_report(r, out, pdf=False)
    assert main(["export", "moodle", str(out), "--worksheet", str(FILES / "moodle_worksheet_es.csv")]) == 0
    assert "filled 2 row(s)" in capsys.readouterr().out
    assert rows_of((out / "moodle_worksheet.csv").read_text(encoding="utf-8"))[2][4] == "10,00"
    with zipfile.ZipFile(out / "moodle_feedback.zip") as zf:
        names = zf.namelist()
    assert sorted(names) == ["Ana García López_1001_assignfeedback_file/informe.html",
                             "Jorge Pérez Núñez_1002_assignfeedback_file/informe.html",
                             "Participante_1009_assignfeedback_file/informe.html"]
    for name in names:
        folder, file = name.split("/")
        parts = folder.split("_")  # as Moodle's importer splits each path part
        assert len(parts) == 4 and parts[1].isdigit() and parts[2:] == ["assignfeedback", "file"]
        assert file in ("informe.pdf", "informe.html")


def test_feedback_zip_prefers_pdf_and_uses_the_download_prefix(tmp_path):
    r = result("Participante_5001", 6, "moodle", "5001", "Participante 5001", "Participante_5001_assignsubmission_file_")
    render_report(r, tmp_path, pdf=False)
    (tmp_path / "Participante_5001.pdf").write_bytes(b"%PDF-1.7 stand-in")
    with zipfile.ZipFile(write_moodle_feedback([r], tmp_path, tmp_path / "f.zip")) as zf:
        assert sorted(zf.namelist()) == ["Participante_5001_assignfeedback_file/informe.html",
                                         "Participante_5001_assignfeedback_file/informe.pdf"]


def test_canvas_gradebook_fills_the_assignment_column(tmp_path):
    text = (FILES / "canvas_gradebook.csv").read_text(encoding="utf-8")
    results = [result("garcialopezana_2001", 7.5, "canvas", "2001", "garcialopezana"),
               result("pereznunezjorge_2002", 9.0, "canvas", "2002", "pereznunezjorge", late=True),
               result("anon_Bc4dE", 5.0, "canvas", "Bc4dE", "Anónimo Bc4dE")]
    with pytest.raises(Exception, match="several assignment columns"):
        fill_canvas_gradebook(text, results)
    filled, report = fill_canvas_gradebook(text, results, "Trabajo 2")
    before, after = rows_of(text), rows_of(filled)
    assert [r[6] for r in after[2:]] == ["7.50", "9.00", "", ""]
    assert [r[:6] + r[7:] for r in after] == [r[:6] + r[7:] for r in before]
    assert report.filled == 2 and "anon_Bc4dE" in report.warnings[-1]
    assert fill_canvas_gradebook(text, results, "5501")[0] == filled


def test_export_canvas_command(tmp_path, capsys):
    out = tmp_path / "out"
    write_exports([result("garcialopezana_2001", 7.5, "canvas", "2001", "garcialopezana")], out)
    target = tmp_path / "subir.csv"
    assert main(["export", "canvas", str(out), "--gradebook", str(FILES / "canvas_gradebook.csv"),
                 "--assignment", "5501", "--output", str(target)]) == 0
    assert "filled 1 row(s)" in capsys.readouterr().out
    assert rows_of(target.read_text(encoding="utf-8"))[2][5:7] == ["4.50", "7.50"]
    assert not (out / "canvas_gradebook.csv").exists()
    assert main(["export", "canvas", str(out), "--gradebook", str(FILES / "canvas_gradebook.csv")]) == 2
    assert "--assignment" in capsys.readouterr().err


def test_spanish_csv_dialect(tmp_path):
    write_exports([result("ana", 7.5)], tmp_path, csv_dialect="es")
    text = (tmp_path / "grades.csv").read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert tuple(rows[0]) == CSV_COLUMNS and rows[1][1:4] == ["7,5", "10", "7,5"]


def test_spreadsheet_safe_neutralises_formulas():
    assert [csvcells.spreadsheet_safe(v) for v in ("=1+1", "+3", "-2", "@SUM(A1)", "\tx", "7,5")] == [
        "'=1+1", "'+3", "'-2", "'@SUM(A1)", "'\tx", "7,5"]


def test_gradebook_gets_record_columns_and_migrates_old_files(tmp_path):
    path = tmp_path / "gradebook.sqlite"
    old = result("ana", 7.5, "moodle", "1001", "Ana García López")
    with sqlite3.connect(path) as db:  # the schema before the record columns
        db.execute("CREATE TABLE results (student TEXT PRIMARY KEY, submission_digest TEXT NOT NULL, "
                   "rubric_digest TEXT NOT NULL, budget TEXT NOT NULL, status TEXT NOT NULL, score REAL, "
                   "max_score REAL, result_json TEXT NOT NULL, finished_at REAL NOT NULL, "
                   "attempts INTEGER NOT NULL DEFAULT 1)")
        db.execute("INSERT INTO results VALUES ('ana', 'd', 'r', 'quick', 'graded', 7.5, 10, ?, 0, 1)",
                   (json.dumps(old.to_dict()),))
    with Gradebook(path) as book:
        book.store(result("luis", 5, "canvas", "2002", "perezluis", late=True), status="graded",
                   rubric_digest="r", budget="quick")
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT student, display_name, platform, platform_id, late FROM results "
                          "ORDER BY student").fetchall()
    assert rows == [("ana", "Ana García López", "moodle", "1001", 0), ("luis", "perezluis", "canvas", "2002", 1)]
    assert [r.record.platform_id for r in load_results(tmp_path)] == ["1001", "2002"]


def test_report_header_and_summary_show_the_record(tmp_path):
    r = result("Ana_1001", 7.5, "moodle", "1001", HOSTILE + " Ana", late=True)
    page = render_report(r, tmp_path, pdf=False).html.read_text(encoding="utf-8")
    assert "Moodle 1001" in page and "entregada con retraso" in page and "<script>alert" not in page
    summary = render_summary([r, result("suelto", 5)], tmp_path).read_text(encoding="utf-8")
    assert "Moodle 1001" in summary and "con retraso" in summary and "Entregadas con retraso" in summary
