"""Moodle round trip, end to end: grade a "download all" ZIP with real kernels, fill the worksheet
the instructor downloaded, and build the feedback ZIP Moodle takes back."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.report import report_filename
from tests.builders import FILES as TEST_FILES

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

FILES = TEST_FILES / "platforms"


def run_cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], capture_output=True, text=True,
                          timeout=1800)


def text_of(page: Path) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def test_moodle_zip_to_worksheet_and_feedback_zip(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli("grade", FILES / "moodle4_folders.zip", "--out", out, "--quiet", "--budget", "quick",
                   "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    assert "graded 3, unchanged 0, grader errors 0" in proc.stdout
    results = {r["student"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    assert {s: (r["record"]["display_name"], r["record"]["platform_id"]) for s, r in results.items()} == {
        "Ana García López_1001": ("Ana García López", "1001"),
        "Jorge Pérez Núñez_1002": ("Jorge Pérez Núñez", "1002"),
        "Lucía Martín_1003": ("Lucía Martín", "1003")}
    assert all(r["runs"] and r["runs"][0]["status"] == "ok" for r in results.values())
    # Discovery's note reached the worker's result.
    assert any("onlinetext.html" in n for n in results["Lucía Martín_1003"]["meta"]["notes"])
    with sqlite3.connect(out / "gradebook.sqlite") as db:
        assert db.execute("SELECT platform_id FROM results ORDER BY platform_id").fetchall() == [
            ("1001",), ("1002",), ("1003",)]
    assert "Ana García López · Moodle 1001" in text_of(out / report_filename("Ana García López_1001"))
    assert "Lucía Martín · Moodle 1003" in text_of(out / "index.html")

    proc = run_cli("export", "moodle", out, "--worksheet", FILES / "moodle_worksheet_es.csv")
    assert proc.returncode == 0, proc.stderr
    assert "filled 3 row(s)" in proc.stdout and proc.stderr == ""
    original = (FILES / "moodle_worksheet_es.csv").read_text(encoding="utf-8-sig")
    filled = (out / "moodle_worksheet.csv").read_text(encoding="utf-8-sig")
    before = list(csv.reader(io.StringIO(original, newline="")))
    after = list(csv.reader(io.StringIO(filled, newline="")))
    assert before[0] == after[0] and len(before) == len(after)
    by_id = {r["record"]["platform_id"]: r for r in results.values()}
    for old, new in zip(before[1:], after[1:]):
        assert [i for i, (a, b) in enumerate(zip(old, new)) if a != b] == ([4, 9] if old[0] != "Participante 1004"
                                                                          else [])
        if old[0] != "Participante 1004":
            r = by_id[old[0].split()[-1]]
            assert new[4] == f"{10 * r['score'] / r['max_score']:.2f}".replace(".", ",")
            assert new[9].startswith(f"Corrección automática del Trabajo 2: {new[4]} / 10,00.")

    with zipfile.ZipFile(out / "moodle_feedback.zip") as zf:
        names = sorted(zf.namelist())
        assert all(zf.read(n).startswith(b"%PDF") for n in names if n.endswith(".pdf"))
    assert len(names) == 6
    for name in names:
        folder, file = name.split("/")
        person, pid, plugin_type, plugin = folder.split("_")  # Moodle's importer splits on "_"
        assert (pid in by_id, plugin_type, plugin) == (True, "assignfeedback", "file")
        assert by_id[pid]["record"]["display_name"] == person and file in ("informe.pdf", "informe.html")
