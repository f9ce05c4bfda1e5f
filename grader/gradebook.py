"""The SQLite gradebook in a batch's output folder: one row per hand-in, written as each finishes.

It is what makes a batch resumable: a hand-in whose content digest, rubric digest and budget match a
stored row is not graded again (unless --force). Only the batch's parent process writes results; the
instructor's overrides (`grader override`) are written by that command. `results` always holds the
automatic result: overrides are applied on top when reports and exports are written, so a re-grade
can tell whether the automatic verdict under an override changed. Gradebooks written before the
`overrides` and `rubrics` tables existed gain them (empty) when opened.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from pathlib import Path

from grader.results import GradeResult, Override

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    student TEXT PRIMARY KEY,
    submission_digest TEXT NOT NULL,
    rubric_digest TEXT NOT NULL,
    budget TEXT NOT NULL,
    status TEXT NOT NULL,          -- "graded" | "error"
    score REAL,
    max_score REAL,
    result_json TEXT NOT NULL,
    finished_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS overrides (
    student TEXT NOT NULL,
    rule TEXT NOT NULL,
    status TEXT NOT NULL,          -- the instructor's status
    points REAL,                   -- NULL: the rubric's points for that status
    note TEXT NOT NULL,
    created_at REAL NOT NULL,
    auto_status TEXT NOT NULL,     -- the automatic verdict when the override was made
    auto_points REAL,
    auto_message TEXT NOT NULL,
    to_confirm INTEGER NOT NULL DEFAULT 0,   -- a re-grade changed the automatic verdict since
    auto_status_now TEXT NOT NULL DEFAULT '',
    auto_points_now REAL,
    PRIMARY KEY (student, rule)
);
-- The rubric text of every digest a result was graded with: re-rendering after an override rescores
-- with exactly that rubric, whatever file --rubric named at the time.
CREATE TABLE IF NOT EXISTS rubrics (
    digest TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    text TEXT NOT NULL
);
"""
_OVERRIDE_COLUMNS = tuple(f.name for f in dataclasses.fields(Override))


class Gradebook:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def is_done(self, student: str, submission_digest: str, rubric_digest: str, budget: str) -> bool:
        row = self._db.execute(
            "SELECT submission_digest, rubric_digest, budget, status FROM results WHERE student = ?",
            (student,),
        ).fetchone()
        return row is not None and row == (submission_digest, rubric_digest, budget, "graded")

    def store(self, result: GradeResult, *, status: str, rubric_digest: str, budget: str) -> None:
        with self._db:  # one transaction per hand-in: a kill never leaves half a row
            self._db.execute(
                """INSERT INTO results (student, submission_digest, rubric_digest, budget, status,
                                        score, max_score, result_json, finished_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(student) DO UPDATE SET
                     submission_digest = excluded.submission_digest,
                     rubric_digest = excluded.rubric_digest, budget = excluded.budget,
                     status = excluded.status, score = excluded.score, max_score = excluded.max_score,
                     result_json = excluded.result_json, finished_at = excluded.finished_at,
                     attempts = results.attempts + 1""",
                (
                    result.student,
                    result.meta.get("submission_digest", ""),
                    rubric_digest,
                    budget,
                    status,
                    result.score,
                    result.max_score,
                    json.dumps(result.to_dict(), ensure_ascii=False),
                    time.time(),
                ),
            )

    def results(self, students: list[str] | None = None) -> list[dict]:
        rows = self._db.execute(
            "SELECT student, status, result_json, attempts, finished_at FROM results ORDER BY student"
        ).fetchall()
        out = []
        for student, status, blob, attempts, finished in rows:
            if students is not None and student not in students:
                continue
            out.append(
                {"student": student, "status": status, "result": json.loads(blob),
                 "attempts": attempts, "finished_at": finished}
            )
        return out

    def students(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT student FROM results ORDER BY student")]

    def set_override(self, override: Override) -> None:
        row = dataclasses.astuple(override)
        marks = ", ".join("?" * len(row))
        with self._db:
            self._db.execute(f"INSERT OR REPLACE INTO overrides ({', '.join(_OVERRIDE_COLUMNS)}) VALUES ({marks})",
                             row)

    def clear_override(self, student: str, rule: str) -> bool:
        """Remove an override; False when there was none."""
        with self._db:
            cur = self._db.execute("DELETE FROM overrides WHERE student = ? AND rule = ?", (student, rule))
        return cur.rowcount > 0

    def overrides(self, student: str | None = None) -> list[Override]:
        query = f"SELECT {', '.join(_OVERRIDE_COLUMNS)} FROM overrides"
        args: tuple = ()
        if student is not None:
            query, args = query + " WHERE student = ?", (student,)
        rows = self._db.execute(query + " ORDER BY student, rule", args).fetchall()
        out = []
        for row in rows:
            data = dict(zip(_OVERRIDE_COLUMNS, row))
            data["to_confirm"] = bool(data["to_confirm"])  # SQLite has no booleans
            out.append(Override(**data))
        return out

    def store_rubric(self, digest: str, name: str, text: str) -> None:
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO rubrics (digest, name, text) VALUES (?, ?, ?)",
                             (digest, name, text))

    def rubric_text(self, digest: str) -> tuple[str, str] | None:
        """(file name, YAML text) of the rubric with this digest, if a batch stored it."""
        row = self._db.execute("SELECT name, text FROM rubrics WHERE digest = ?", (digest,)).fetchone()
        return (row[0], row[1]) if row else None
