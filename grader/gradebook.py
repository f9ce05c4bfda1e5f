"""The SQLite gradebook in a batch's output folder: one row per hand-in, written as each finishes.

It is what makes a batch resumable: a hand-in whose content digest, rubric digest and budget match a
stored row is not graded again (unless --force). Only the batch's parent process writes to it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from grader.results import GradeResult

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
"""


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
