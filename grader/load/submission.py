"""The loaded hand-in: `Submission`, its `Cell`s and where they came from, and load errors.

Shared by the loaders (`grader.load.reader`, `grader.load.zipsafe`, `grader.load.discover`) and by
every later stage; `grader.load` re-exports all of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grader.results import StudentRecord


@dataclass(frozen=True)
class Origin:
    """Where a cell came from inside the hand-in."""

    file: str  # path relative to the hand-in root, e.g. "trabajo2.ipynb" or "ej1.py"
    cell: int | None  # 0-based cell index inside that file (None: the whole file is one cell)
    line: int = 1  # 1-based line in that file of the cell's first source line (1 for .ipynb)


@dataclass
class Cell:
    index: int  # 0-based position in the merged submission
    cell_type: str  # "code" | "markdown" | "raw"
    source: str
    outputs: list[dict] = field(default_factory=list)  # nbformat output dicts as handed in
    execution_count: int | None = None
    origin: Origin = Origin("", None)

    @property
    def number(self) -> int:
        """1-based number used in messages ("celda 7")."""
        return self.index + 1


@dataclass(frozen=True)
class LoadError:
    """Why a hand-in (or one of its files) could not be loaded; `message` is Spanish."""

    code: str  # stable id, e.g. "invalid_json", "empty", "too_large", "zip_unsafe_path"
    message: str
    file: str | None = None


@dataclass
class Submission:
    student: str
    path: Path
    kind: str  # "ipynb" | "py" | "md" | "mixed"; "unknown" when nothing could be loaded
    cells: list[Cell] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    load_error: LoadError | None = None
    notes: list[str] = field(default_factory=list)  # Spanish notes, e.g. "nbformat v3 convertido"
    digest: str = ""  # sha256 of the hand-in's content (resume, cache)
    # Files of a multi-file hand-in that could not be read while others could (kept, not fatal).
    file_errors: list[LoadError] = field(default_factory=list)
    # Folder holding the files on disk (the student folder, the extracted ZIP, or the file's
    # folder): run student code there so that "from utils import ..." between files works.
    source_dir: Path | None = None
    record: StudentRecord | None = None  # who handed it in, as the platform named them

    @property
    def code_cells(self) -> list[Cell]:
        return [c for c in self.cells if c.cell_type == "code"]

    def file_position(self, cell: int | None, line: int | None = None) -> tuple[str, int | None] | None:
        """Where (cell, line-in-cell) is in the files the student handed in: (file, line in that file).
        For a notebook the line is the line inside the cell; for a .py/.md file it is the file's own
        line. None when the cell does not exist."""
        if cell is None or not 0 <= cell < len(self.cells):
            return None
        origin = self.cells[cell].origin
        if origin.cell is None or not origin.file.lower().endswith(".ipynb"):
            return origin.file, origin.line + (line or 1) - 1
        return origin.file, line


class FileProblem(Exception):
    """One file (or ZIP) cannot be loaded; carries the `LoadError` to report.

    Internal to the loaders: `load_submission` turns it into `Submission.load_error` or
    `Submission.file_errors`, so it never reaches callers.
    """

    def __init__(self, error: LoadError):
        super().__init__(error.message)
        self.error = error
