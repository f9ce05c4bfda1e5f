"""Batch grading end to end: real kernels, real retraining on tiny hand-ins, the SQLite gradebook.

Includes the kill-and-resume checks: a batch killed half-way (SIGINT, SIGKILL) is finished by a
re-run that neither re-grades finished hand-ins nor loses or duplicates a result.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tests.builders import tiny_notebook

pytestmark = [pytest.mark.kernel]

@pytest.fixture
def batch_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "entregas"
    folder.mkdir()
    for i, units in enumerate((16, 24, 32)):
        nbformat.write(tiny_notebook(units), folder / f"alumno{i}.ipynb")
    (folder / "roto.ipynb").write_text("{ not json", encoding="utf-8")
    return folder


def run_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, **kw)


def rows(out: Path) -> dict[str, tuple]:
    # The batch may have created the file but not yet its table (polled while it starts): no rows yet.
    with sqlite3.connect(out / "gradebook.sqlite", timeout=30) as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'results'").fetchone():
            return {}
        return {r[0]: r[1:] for r in db.execute("SELECT student, status, attempts, finished_at FROM results")}


def test_grade_batch_writes_everything_and_resumes_without_regrading(batch_dir: Path, tmp_path: Path):
    out = tmp_path / "out"
    proc = run_cli("grade", str(batch_dir), "--out", str(out), "--quiet", "--no-pdf", "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    book = rows(out)
    assert set(book) == {"alumno0", "alumno1", "alumno2", "roto"}
    assert all(status == "graded" and attempts == 1 for status, attempts, _ in book.values())
    for name in ("index.html", "grades.csv", "results.json", "junit.xml"):
        assert (out / name).is_file(), name
    for student in book:
        assert (out / f"{student}.html").is_file()
    results = {r["student"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    assert results["roto"]["errors"][0]["stage"] == "load"
    assert results["alumno0"]["runs"] and results["alumno0"]["runs"][0]["status"] == "ok"
    # The three notebooks differ by one number: the same code for the similarity step, which flags
    # them (and leaves the unreadable one out); the class summary links its report.
    similar = json.loads((out / "similarity.json").read_text(encoding="utf-8"))
    assert {(p["a"], p["b"], p["flagged"]) for p in similar} == {
        ("alumno0", "alumno1", True), ("alumno0", "alumno2", True), ("alumno1", "alumno2", True)}
    assert 'href="similarity.html"' in (out / "index.html").read_text(encoding="utf-8")
    assert "alumno0" in (out / "similarity.html").read_text(encoding="utf-8")

    # Unchanged hand-ins are not graded again; a changed one is.
    nbformat.write(tiny_notebook(48), batch_dir / "alumno1.ipynb")
    proc = run_cli("grade", str(batch_dir), "--out", str(out), "--quiet", "--no-pdf")
    assert proc.returncode == 0, proc.stderr
    assert "graded 1, unchanged 3" in proc.stdout
    again = rows(out)
    assert again["alumno0"] == book["alumno0"]
    assert again["alumno1"][1] == 2


def start_batch(batch_dir: Path, out: Path, cache: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "grader", "grade", str(batch_dir), "--out", str(out), "--quiet", "--no-pdf",
           "--cache-dir", str(cache)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def wait_for_rows(proc: subprocess.Popen, out: Path, at_least: int) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if (out / "gradebook.sqlite").is_file() and len(rows(out)) >= at_least:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.3)
    pytest.fail(f"fewer than {at_least} hand-ins finished in time")


def test_killed_batch_resumes_without_losing_or_duplicating(batch_dir: Path, tmp_path: Path):
    """SIGINT after the first stored result, SIGKILL after the second, then a re-run finishes the batch."""
    out, cache = tmp_path / "out", tmp_path / "cache"
    everyone = {"alumno0", "alumno1", "alumno2", "roto"}
    snapshots = []
    for sig, stored in ((signal.SIGINT, 1), (signal.SIGKILL, 2)):
        proc = start_batch(batch_dir, out, cache)
        wait_for_rows(proc, out, stored)
        proc.send_signal(sig)
        proc.wait(timeout=60)
        if sig == signal.SIGINT:
            assert proc.returncode == 130
        snapshot = rows(out)
        assert stored <= len(snapshot) < len(everyone), "the kill came too late to test anything"
        snapshots.append(snapshot)

    resumed = run_cli("grade", str(batch_dir), "--out", str(out), "--quiet", "--no-pdf", "--cache-dir", str(cache))
    assert resumed.returncode == 0, resumed.stderr
    after = rows(out)
    assert set(after) == everyone
    for snapshot in snapshots:
        for student, row in snapshot.items():
            assert after[student] == row, f"{student} was graded again after being stored"
    assert all(status == "graded" and attempts == 1 for status, attempts, _ in after.values())
    exported = json.loads((out / "results.json").read_text())["results"]
    assert sorted(r["student"] for r in exported) == sorted(everyone)
