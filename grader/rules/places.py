"""Where a finding is, in the hand-in's own terms: the one formatter of "celda 7, línea 3" and
"línea 12 de ej1.py" (cells 1-based; a .py hand-in by its file's own lines)."""

from __future__ import annotations

from grader.load import Submission

DEFAULT_TEMPLATE = "celda {cell}, línea {line}"


def place(sub: Submission, cell: int | None, line: int | None = None, template: str = DEFAULT_TEMPLATE) -> str:
    position = sub.file_position(cell, line)
    if position is None:
        return "celda desconocida"
    file, file_line = position
    if file.lower().endswith(".py"):
        return f"línea {file_line} de {file}"
    if line is None:
        return f"celda {cell + 1}"
    return template.format(cell=cell + 1, line=line)
