"""The grader's exceptions: one base class, a few subclasses that carry their context.

A `GraderError` is for the instructor (English): bad configuration, a missing data set, a bad
command line. Problems in a student's hand-in are never raised past the pipeline: they become data
(`LoadError`, `CellError`, verdicts) in that hand-in's result.
"""

from __future__ import annotations


class GraderError(Exception):
    """Base class; `exit_code` is what the CLI exits with."""

    exit_code = 2


class ConfigError(GraderError):
    """A rubric or option is invalid; names the file and the key."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None):
        where = ":".join(p for p in (file, key) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.file = file
        self.key = key


class DataError(GraderError):
    """Fashion-MNIST cannot be found or does not look like Fashion-MNIST."""
