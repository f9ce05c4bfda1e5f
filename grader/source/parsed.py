"""Each code cell parsed once: `parse_cell()` is the one place where grader.source and grader.rules
turn a cell's text into an `ast` tree.

Static analysis used to parse the same cell in five places (static facts, suspicious patterns, fit
sites, prose in comments, tamperings); a generated 8 MB cell then cost gigabytes and minutes, five
times. Now a cell is parsed at most once per process (cached by its text), and a cell over
MAX_CELL_CHARS is not parsed at all: `analyze()` lists it under `unanalyzed` and the rules say so.
The trees are shared: callers read them, never change them.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass

MAX_CELL_CHARS = 200_000  # a homework cell is a few kB; 200 kB of code is generated, not written
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug"}


@dataclass(frozen=True)
class ParsedCell:
    source: str | None  # magics blanked out (line numbers kept); None: not Python (a %%bash cell...)
    magics: tuple[tuple[int, str], ...]
    tree: ast.Module | None  # None when not Python, too large, or not parseable
    error: Exception | None = None  # SyntaxError/ValueError (null bytes); RecursionError/MemoryError
    too_large: bool = False


@functools.lru_cache(maxsize=256)
def parse_cell(source: str) -> ParsedCell:
    """The cell's code with its magics stripped, and its tree (see ParsedCell)."""
    if len(source) > MAX_CELL_CHARS:
        return ParsedCell(None, (), None, too_large=True)
    code, magics = strip_magics(source)
    if code is None:
        return ParsedCell(None, tuple(magics), None)
    try:
        return ParsedCell(code, tuple(magics), ast.parse(code))
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return ParsedCell(code, tuple(magics), None, error=exc)


def strip_magics(source: str) -> tuple[str | None, list[tuple[int, str]]]:
    """Blank out IPython magics and shell lines, keeping line numbers; None for non-Python cells."""
    lines = re.split(r"\r\n|\r|\n", source)  # Python's own line breaks only (not \f, \u2028, ...)
    found: list[tuple[int, str]] = []
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        name = first[2:].split()[0] if len(first) > 2 else ""
        found.append((1, first))
        if name not in _PYTHON_CELL_MAGICS:
            return None, found
        lines[0] = ""
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")) or (stripped.endswith("?") and not stripped.startswith("#")
                                                 and re.fullmatch(r"[\w.]+\?\??", stripped)):
            found.append((i + 1, stripped))
            indent = line[: len(line) - len(stripped)]
            lines[i] = indent + "pass" if indent else ""
    return "\n".join(lines), found
