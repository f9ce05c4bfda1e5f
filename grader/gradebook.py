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

from grader.codec import from_data
from grader.errors import GraderError
from grader.results import GradeResult, Override, StudentRecord

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
# Who handed each hand-in in (StudentRecord). The result JSON above already carries the record and
# stays the source of truth; these columns mirror it so that an instructor can query the gradebook
# by name or platform id with plain SQL (`SELECT student FROM results WHERE platform_id = '1001'`).
# Columns rather than a new table or schema version: ALTER TABLE ADD COLUMN is instant, old code
# keeps working on a migrated file (it names its columns), and old rows are filled from their JSON.
RECORD_COLUMNS = {"display_name": "TEXT", "platform": "TEXT", "platform_id": "TEXT", "late": "INTEGER"}


class Gradebook:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        have = {row[1] for row in self._db.execute("PRAGMA table_info(results)")}
        missing = [name for name in RECORD_COLUMNS if name not in have]
        if not missing:
            return
        with self._db:
            for name in missing:
                self._db.execute(f"ALTER TABLE results ADD COLUMN {name} {RECORD_COLUMNS[name]}")
            for student, blob in self._db.execute("SELECT student, result_json FROM results").fetchall():
                record = json.loads(blob).get("record")
                self._db.execute("UPDATE results SET display_name = ?, platform = ?, platform_id = ?, late = ?"
                                 " WHERE student = ?", (*_record_values(record), student))

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
            data = result.to_dict()
            self._db.execute(
                """INSERT INTO results (student, submission_digest, rubric_digest, budget, status,
                                        score, max_score, result_json, finished_at,
                                        display_name, platform, platform_id, late)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(student) DO UPDATE SET
                     submission_digest = excluded.submission_digest,
                     rubric_digest = excluded.rubric_digest, budget = excluded.budget,
                     status = excluded.status, score = excluded.score, max_score = excluded.max_score,
                     result_json = excluded.result_json, finished_at = excluded.finished_at,
                     display_name = excluded.display_name, platform = excluded.platform,
                     platform_id = excluded.platform_id, late = excluded.late,
                     attempts = results.attempts + 1""",
                (
                    result.student,
                    result.meta.get("submission_digest", ""),
                    rubric_digest,
                    budget,
                    status,
                    result.score,
                    result.max_score,
                    json.dumps(data, ensure_ascii=False),
                    time.time(),
                    *_record_values(data.get("record")),
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

def _record_values(record: dict | None) -> tuple:
    if not record:
        return (None, "folder", None, 0)
    r = from_data(StudentRecord, record)
    return (r.display_name, r.platform, r.platform_id, int(r.late))


def load_results(out_dir: Path) -> list[GradeResult]:
    """A graded batch's results: its gradebook (the source of truth), else its results.json."""
    out_dir = Path(out_dir)
    if (out_dir / "gradebook.sqlite").is_file():
        with Gradebook(out_dir / "gradebook.sqlite") as book:
            return [from_data(GradeResult, row["result"]) for row in book.results()]
    if (out_dir / "results.json").is_file():
        data = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))
        return [from_data(GradeResult, r) for r in data.get("results", [])]
    raise GraderError(f"{out_dir}: no gradebook.sqlite or results.json; grade the hand-ins into it first "
                      f"(grader grade HAND-INS --out {out_dir})")
