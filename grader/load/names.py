"""Hand-in file names: what to ignore, student ids, exercise numbers and merge order."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

NOTEBOOK_SUFFIXES = (".ipynb", ".py", ".md")
IGNORED_NAMES = {"__MACOSX", ".ipynb_checkpoints", "__pycache__", ".git", ".venv", "venv",
                 "site-packages", "dist-packages", "node_modules"}


def is_ignored(name: str) -> bool:
    """Hidden files, macOS/Jupyter/Python debris; these never count as hand-in content."""
    return name.startswith((".", "~$")) or name in IGNORED_NAMES


def natural_key(text: str) -> list:
    """Sort key so that "ej2" < "ej10"; case- and accent-insensitive."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", _fold(text))]


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_EXERCISE_RE = re.compile(
    r"(?:^|[^a-z])(?:ejercicio|ejerc|ejer|ej|exercise|exercice|ex|parte|part|apartado|pregunta"
    r"|question|seccion|section|tarea|p|q)[\s_.-]*(\d+(?:[._-]\d+)*)(?![a-z])"
)
_LEADING_NUMBER_RE = re.compile(r"^(\d+(?:[._-]\d+)*)(?:[\s_.-]|$)")
_PREAMBLE_TOKENS = {
    "utils", "util", "utilidades", "common", "comun", "comunes", "datos", "data", "main",
    "helpers", "helper", "funciones", "imports", "preambulo", "setup", "config", "carga", "plots",
}


def exercise_number(name: str) -> tuple[int, ...] | None:
    """Exercise number carried by a file name: "ej4_1.py" -> (4, 1), "2_optim.py" -> (2,)."""
    stem = _fold(Path(name).stem)
    match = _EXERCISE_RE.search(stem) or _LEADING_NUMBER_RE.match(stem)
    if match is None:
        return None
    return tuple(int(n) for n in re.split(r"[._-]", match.group(1)))


def is_preamble(name: str) -> bool:
    """A shared file (utils, datos, comun, main...) without an exercise number: it runs first."""
    tokens = re.split(r"[\s_.-]+", _fold(Path(name).stem))
    return exercise_number(name) is None and any(t in _PREAMBLE_TOKENS for t in tokens)


def file_order_key(rel: str) -> tuple:
    """Merge order of one student's files: preamble first, then by exercise number, then name."""
    name = Path(rel).name
    number = exercise_number(name)
    return (
        0 if is_preamble(name) else 1,
        (0, number) if number is not None else (1, ()),
        natural_key(name),
        natural_key(rel),
    )


def looks_like_one_student(names: list[str]) -> bool:
    """Heuristic for a folder of plain files: one student's per-exercise files, not a batch.

    True when there are at least two files, no exercise number repeats (a repeated "ej1" means
    several students' copies of the same exercise), and either every name carries an exercise
    number (ej1.py, ejercicio_2.py, exercise3.py, part1.py, 1_activaciones.py) or is a preamble
    name (utils, datos, comun, main...) with at least one number among them, or exactly one
    name is neither and the rest are preamble files ("trabajo2.ipynb" + "utils.py").
    """
    if len(names) < 2:
        return False
    numbers = [exercise_number(n) for n in names]
    present = [num for num in numbers if num is not None]
    if len(set(present)) != len(present):
        return False
    plain = [n for n, num in zip(names, numbers) if num is None and not is_preamble(n)]
    preambles = len(names) - len(present) - len(plain)
    return (not plain and bool(present)) or (len(plain) == 1 and not present and preambles > 0)


def student_id(name: str) -> str:
    """Student id from a file or folder name: the stem, safe to use as a file name.

    The suffix that Moodle's "download all submissions" adds to folder names is dropped.
    """
    stem = Path(name).stem if Path(name).suffix.lower() in NOTEBOOK_SUFFIXES + (".zip",) else name
    stem = re.sub(r"_assignsubmission_\w*$", "", stem)
    stem = re.sub(r"[\\/\x00-\x1f]", "_", stem).strip().lstrip(".")
    return stem or "sin_nombre"
