"""Hand-in identity: ids that cannot collide, names safe to show and to write, and the loader's
limits on what a name or an archive can do (real files on disk, named as file systems allow)."""

from __future__ import annotations

import csv
import json
import os
import unicodedata
import warnings
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from grader.codec import to_data
from grader.gradebook import Gradebook
from grader.load import (
    MAX_ZIP_TOTAL_BYTES,
    clean_id,
    display_name,
    file_stem,
    find_submissions,
    load_submission,
    resolve_collisions,
)
from grader.load.names import MAX_ID_BYTES, RESERVED_STEMS
from grader.report import render_report, render_summary, write_exports
from grader.report.csvcells import spreadsheet_safe
from grader.report.sample import sample_result

RLO = "\u202e"
# What a batch writes into OUT (grader/report, grader/batch.py, grader/pipeline.py), and what the
# review and similarity features will.
OUT_FILES = {"index.html", "review.html", "similarity.html", "grades.csv", "results.json", "junit.xml",
             "gradebook.sqlite", "logs", "results", "work", "gradescope", "extracted", ".cache", "review",
             "similarity"}


def notebook(path: Path, secret: str) -> Path:
    """A small real notebook whose code carries `secret`, so that a report shows whose work it is."""
    nb = v4.new_notebook(cells=[v4.new_markdown_cell("# Trabajo 2"),
                                v4.new_code_cell(f"secreto = '{secret}'\nprint(secreto)")])
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def write_bytes_name(folder: Path, name: bytes, secret: str) -> Path:
    """A notebook under a name that may not be UTF-8 (as a Linux file system allows)."""
    nb = v4.new_notebook(cells=[v4.new_code_cell(f"secreto = '{secret}'")])
    raw = os.path.join(os.fsencode(folder), name)
    with open(raw, "wb") as fh:
        fh.write(nbformat.writes(nb).encode("utf-8"))
    return Path(os.fsdecode(raw))


def secret_of(sub) -> str:
    return next(c.source for c in sub.code_cells).split("'")[1]


# ---------------------------------------------------------------- names as text


def test_printable_names_drop_bidi_controls_and_surrogates() -> None:
    assert display_name(f"{RLO}aicraG anA") == "aicraG anA"  # no longer shown as "Ana García"
    assert display_name("Ana\u200b  García\u2066") == "Ana García"
    assert clean_id("caf\udce9") == "caf\ufffd"  # os.fsdecode of b"caf\xe9"
    assert clean_id("Jose\u0301") == "Jos\u00e9"  # NFD from a macOS ZIP -> NFC
    assert clean_id("../../etc/passwd") == "_.._etc_passwd"
    assert clean_id("\x00\x1b") == "__"
    assert clean_id(RLO) == "sin_nombre"
    for text in (f"{RLO}x", "caf\udce9", "a\x00b"):
        clean_id(text).encode("utf-8")  # always encodable: sqlite, JSON and HTML need it
        display_name(text).encode("utf-8")


def test_ids_are_capped_in_bytes_not_characters() -> None:
    long_id = clean_id("ñ" * 300)  # 2 bytes each
    assert len(long_id.encode("utf-8")) <= MAX_ID_BYTES and long_id == "ñ" * (MAX_ID_BYTES // 2)
    assert clean_id("a" * 99 + "ñ") == "a" * 99  # never half a character


@pytest.mark.parametrize("student", [*(n.split(".")[0] for n in OUT_FILES), *OUT_FILES, "INDEX", "Index.v2",
                                     "con", "sin_nombre.html"])
def test_file_stems_never_name_an_output(student: str) -> None:
    stem = file_stem(student)
    for suffix in ("", ".html", ".pdf", ".json", ".log"):  # reports, results/, logs/, work/, gradescope/
        assert (stem + suffix).casefold() not in OUT_FILES, stem
    if student.split(".")[0].casefold() in RESERVED_STEMS:
        assert "~" in stem


def test_file_stems_are_safe_and_kept_ids_never_look_changed() -> None:
    assert file_stem("garcia_lopez_maria") == "garcia_lopez_maria"
    assert file_stem("José-Núñez.2") == "José-Núñez.2"
    changed = file_stem("a b")
    assert changed.startswith("a_b~")
    # A kept id never holds "~", so no id can be crafted to equal another's changed stem.
    assert file_stem(changed) != changed and "~" not in file_stem("a_b")
    for hostile in ("../../etc/passwd", "a/b", "..", "", "\\x00", f"{RLO}x", "caf\udce9", "é" * 400):
        stem = file_stem(hostile)
        assert "/" not in stem and not stem.startswith(".") and len(stem.encode("utf-8")) <= 200


# ---------------------------------------------------------------- one id per hand-in


def test_case_and_normalisation_collisions_get_a_suffix_and_a_note_in_both(tmp_path: Path) -> None:
    batch = tmp_path / "lote"
    notebook(batch / "ana.ipynb", "S-ana")
    notebook(batch / "Ana.ipynb", "S-Ana")
    notebook(batch / unicodedata.normalize("NFC", "José.ipynb"), "S-nfc")
    notebook(batch / unicodedata.normalize("NFD", "José.ipynb"), "S-nfd")
    notebook(batch / "ana-2.ipynb", "S-ana-2")  # a real "ana-2" keeps its name
    subs = find_submissions(batch, workdir=tmp_path / "w")
    ids = [s.student for s in subs]
    assert len(ids) == 5 and len({i.casefold() for i in ids}) == 5, ids
    assert len({file_stem(i).casefold() for i in ids}) == 5
    by_secret = {secret_of(s): s for s in subs}
    assert by_secret["S-ana-2"].student == "ana-2"
    assert {by_secret["S-Ana"].student, by_secret["S-ana"].student} == {"Ana", "ana-3"}
    assert {by_secret["S-nfc"].student, by_secret["S-nfd"].student} == {"José", "José-2"}
    for secret in ("S-ana", "S-Ana", "S-nfc", "S-nfd"):
        sub = by_secret[secret]
        assert any("coincide" in n and "«" in n for n in sub.notes), (secret, sub.notes)
    assert not by_secret["S-ana-2"].notes
    # The same batch loaded again gives every hand-in the same id (a re-run resumes).
    again = {secret_of(s): s.student for s in find_submissions(batch, workdir=tmp_path / "w2")}
    assert again == {k: s.student for k, s in by_secret.items()}


def test_two_zip_entries_that_map_to_one_id(tmp_path: Path) -> None:
    archive = tmp_path / "descarga.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i, name in enumerate(["luis.ipynb", "luis/trabajo.ipynb", "Luis.ipynb"]):
            nb = v4.new_notebook(cells=[v4.new_code_cell(f"a = 'S{i}'")])
            zf.writestr(f"entregas/{name}", nbformat.writes(nb))
    subs = find_submissions(archive, workdir=tmp_path / "w")
    assert sorted(s.student for s in subs) == ["Luis", "luis-2", "luis-3"]
    assert {secret_of(s) for s in subs} == {"S0", "S1", "S2"}
    assert all(s.notes for s in subs)


def test_ids_made_elsewhere_are_cleaned_and_resolved_too(tmp_path: Path) -> None:
    """The platform parsers make ids too: the same pass cleans and separates them."""
    subs = [load_submission(notebook(tmp_path / f"{i}.ipynb", f"S{i}"), student=name)
            for i, name in enumerate(["Ana García", f"{RLO}Ana García", "ana garcía", "index"])]
    ids = [s.student for s in resolve_collisions(subs)]
    assert sorted(ids) == ["Ana García", "Ana García-2", "ana garcía-3", "index"], ids
    assert file_stem("index") != "index"


def test_folder_record_is_filled_and_clean(tmp_path: Path) -> None:
    [sub] = find_submissions(notebook(tmp_path / f"{RLO}aicraG anA.ipynb", "S"))
    assert sub.record is not None and sub.record.platform == "folder"
    assert sub.record.display_name == "aicraG anA" and RLO not in sub.record.source_name
    assert sub.record.source_name == "aicraG anA.ipynb" and sub.student == "aicraG anA"


# ---------------------------------------------------------------- names that used to stop a batch


def test_long_and_non_utf8_names_load_and_store(tmp_path: Path) -> None:
    batch = tmp_path / "lote"
    batch.mkdir()
    long_file = "a" * 249 + ".ipynb"  # 255 bytes: NAME_MAX
    notebook(batch / long_file, "S-long")
    notebook(batch / ("b" * 255) / "trabajo.ipynb", "S-folder")
    write_bytes_name(batch, b"caf\xe9.ipynb", "S-latin1")
    write_bytes_name(batch, b"caf\xe8.ipynb", "S-latin1-bis")  # same id once cleaned
    subs = find_submissions(batch, workdir=tmp_path / "w")
    assert sorted(secret_of(s) for s in subs) == ["S-folder", "S-latin1", "S-latin1-bis", "S-long"]
    assert all(s.load_error is None for s in subs)
    results = []
    for sub in subs:
        assert len(file_stem(sub.student).encode()) + len(".html") < 255
        sub.student.encode("utf-8")
        for text in (*sub.files, *sub.notes, sub.record.source_name):
            text.encode("utf-8")
        result = sample_result(sub.student)
        result.record, result.meta["files"], result.meta["notes"] = sub.record, sub.files, sub.notes
        results.append(result)
    assert {s.student for s in subs} >= {"caf\ufffd", "caf\ufffd-2"}
    out = tmp_path / "out"
    with Gradebook(out / "gradebook.sqlite") as book:
        for r in results:
            book.store(r, status="graded", rubric_digest="r", budget="quick")
        assert len(book.results()) == 4
    for r in results:
        render_report(r, out, pdf=False)
        (out / "logs").mkdir(exist_ok=True)
        (out / "logs" / f"{file_stem(r.student)}.log").write_text("ok", encoding="utf-8")
    render_summary(results, out)
    write_exports(results, out)
    assert len(list(out.glob("*.html"))) == 5  # four reports and index.html
    assert len(list((out / "gradescope").iterdir())) == 4


def test_lone_surrogate_in_notebook_json_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "raro.ipynb"
    text = nbformat.writes(v4.new_notebook(cells=[v4.new_code_cell("x = 'PLACEHOLDER'")]))
    path.write_text(text.replace("PLACEHOLDER", "\\udc80"), encoding="utf-8")
    sub = load_submission(path)
    assert sub.load_error is not None and sub.load_error.code == "invalid_unicode"
    assert "«raro.ipynb»" in sub.load_error.message
    json.dumps(to_data(sub.load_error), ensure_ascii=False).encode("utf-8")
    # An emoji written as a surrogate pair is one character: it loads.
    path.write_text(text.replace("PLACEHOLDER", "\\ud83d\\ude00"), encoding="utf-8")
    assert load_submission(path).code_cells[0].source == "x = '\U0001f600'"


# ---------------------------------------------------------------- ZIPs


def test_duplicate_zip_members_are_refused(tmp_path: Path) -> None:
    for i, (first, second) in enumerate([("trabajo.ipynb", "trabajo.ipynb"), ("src/ej1.py", "src//ej1.py"),
                                         ("src/ej1.py", "./src/ej1.py")]):
        archive = tmp_path / f"doble{i}.zip"
        with zipfile.ZipFile(archive, "w") as zf, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate it writes
            zf.writestr(first, "x = 1\n")
            zf.writestr(second, "x = 2\n")
        sub = load_submission(archive, workdir=tmp_path / "w")
        assert sub.load_error is not None and sub.load_error.code == "zip_duplicate", sub.load_error
        assert f"«doble{i}.zip»" in sub.load_error.message and "mismo nombre" in sub.load_error.message
    # Names that differ in case or Unicode form are two files on Linux: both are kept.
    archive = tmp_path / "casi.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("Ej1.py", "ej1.py", unicodedata.normalize("NFC", "José.py"),
                     unicodedata.normalize("NFD", "José.py")):
            zf.writestr(name, f"x = {name!r}\n")
    sub = load_submission(archive, workdir=tmp_path / "w")
    assert sub.load_error is None and len(sub.files) == 4, sub.files


def test_nested_zips_share_one_extraction_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Lowered so that the test needs kilobytes; the budget logic is the one used in batches.
    monkeypatch.setattr("grader.load.zipsafe.MAX_ZIP_TOTAL_BYTES", 5000)
    assert MAX_ZIP_TOTAL_BYTES > 5000
    student = tmp_path / "lote" / "marta"
    notebook(student / "trabajo.ipynb", "S")
    for i in range(3):  # each alone is under the limit, together they are not
        with zipfile.ZipFile(student / f"datos{i}.zip", "w", zipfile.ZIP_STORED) as zf:
            zf.writestr(f"parte{i}.py", os.urandom(2000))
    notebook(tmp_path / "lote" / "pedro.ipynb", "P")
    sub = next(s for s in find_submissions(tmp_path / "lote", workdir=tmp_path / "w") if s.student == "marta")
    assert sub.load_error is None
    refused = [e for e in sub.file_errors if e.code == "zip_too_large"]
    assert [e.file for e in refused] == ["datos2.zip"], sub.file_errors
    extracted = sum(p.stat().st_size for p in (tmp_path / "w").rglob("*") if p.is_file())
    assert extracted <= 5000


def test_zip_member_name_longer_than_a_file_system_holds(tmp_path: Path) -> None:
    archive = tmp_path / "largo.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x" * 300 + ".py", "x = 1\n")
    sub = load_submission(archive, workdir=tmp_path / "w")
    assert sub.load_error is not None and sub.load_error.code == "zip_long_name"


# ---------------------------------------------------------------- CSV


@pytest.mark.parametrize("value, expected", [
    ("=HYPERLINK(\"http://x\",\"nota\")", "'=HYPERLINK(\"http://x\",\"nota\")"),
    ("+SUM(1,1)", "'+SUM(1,1)"), ("-2+3", "'-2+3"), ("@SUM(1+1)", "'@SUM(1+1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("ana", "ana"), ("a=b", "a=b"), ("", ""),
    (-2.5, -2.5), (0, 0), (None, None),
])
def test_spreadsheet_safe(value, expected) -> None:
    assert spreadsheet_safe(value) == expected


def test_grades_csv_neutralises_formulas_and_keeps_numbers(tmp_path: Path) -> None:
    names = ['=HYPERLINK("http://x","nota")', "+SUM(1,1)", "-2+3", "@SUM(1+1)", "ana"]
    results = [sample_result(n) for n in names]
    results[-1].score = -1.5  # a penalty below zero is still a number
    path = write_exports(results, tmp_path)["grades_csv"]
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = {row["student"]: row for row in csv.DictReader(fh)}
    assert set(rows) == {"'" + n for n in names[:-1]} | {"ana"}
    assert rows["ana"]["score"] == "-1.5" and rows["ana"]["grade_10"] == "-1.5"
    for row in rows.values():
        for cell in row.values():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), row


# ---------------------------------------------------------------- a batch


def test_batch_reads_a_class_zip_while_grading_and_removes_what_it_extracted(tmp_path: Path) -> None:
    """Workers load hand-ins from OUT/extracted (a class ZIP), so it must last until they have;
    after the batch nothing extracted is left. Empty notebooks: a load error each, no kernel."""
    from grader.batch import grade_batch
    from grader.options import GradeOptions

    archive = tmp_path / "descarga.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("entregas/=1+1.ipynb", "entregas/index.ipynb"):
            zf.writestr(name, "")
    out = tmp_path / "out"
    (out / "extracted" / "viejo").mkdir(parents=True)  # left by a batch that was killed
    summary = grade_batch(archive, GradeOptions(out_dir=out, pdf=False), jobs=2, progress=False)
    assert sorted(summary.graded) == ["=1+1", "index"] and not summary.failed
    with Gradebook(out / "gradebook.sqlite") as book:
        codes = {r["student"]: [e["code"] for e in r["result"]["errors"]] for r in book.results()}
    assert codes == {"=1+1": ["empty"], "index": ["empty"]}  # the workers found the files
    assert not (out / "extracted").exists()
    assert "id=\"students\"" in (out / "index.html").read_text(encoding="utf-8")
    assert (out / f"{file_stem('index')}.html").is_file() and file_stem("index") != "index"
    rows = list(csv.reader((out / "grades.csv").open(encoding="utf-8-sig", newline="")))
    assert [r[0] for r in rows[1:]] == ["'=1+1", "index"]


def test_discovery_keeps_only_the_extracted_folders_workers_read(tmp_path: Path) -> None:
    from grader.batch import prune_extracted

    student_zip = tmp_path / "marta.zip"
    with zipfile.ZipFile(student_zip, "w") as zf:
        zf.writestr("trabajo.ipynb", nbformat.writes(v4.new_notebook(cells=[v4.new_code_cell("a = 'S'")])))
    archive = tmp_path / "descarga.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(student_zip, "entregas/marta.zip")
        for name in ("luis", "pedro"):
            zf.writestr(f"entregas/{name}.ipynb", nbformat.writes(v4.new_notebook()))
    extracted = tmp_path / "out" / "extracted"
    subs = find_submissions(archive, workdir=extracted)
    assert len(list(extracted.iterdir())) == 2  # the class ZIP and marta's own ZIP
    prune_extracted(extracted, subs)
    [kept] = list(extracted.iterdir())
    assert all(s.path.is_relative_to(kept) and s.path.exists() for s in subs)
    marta = next(s for s in subs if s.student == "marta")
    assert load_submission(marta.path, "marta", workdir=tmp_path / "job").digest == marta.digest
