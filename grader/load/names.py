"""Hand-in file names: what to ignore, exercise numbers and merge order; student ids, the names
shown for them and the file names derived from them, and the one pass that keeps ids unique."""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from pathlib import Path

from grader.load.submission import Submission
from grader.results import StudentRecord

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


def printable(text: str) -> str:
    """`text` as it may be shown and stored: NFC; bidirectional controls and other invisible format
    characters (Unicode category Cf, e.g. U+202E) removed; control characters as "?"; and the lone
    surrogates that `os.fsdecode` makes of bytes that are not UTF-8 as U+FFFD, so that the text can
    always be encoded (sqlite, JSON, HTML, CSV and logs all refuse lone surrogates)."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        category = unicodedata.category(ch)
        if category == "Cf":
            continue
        out.append("\ufffd" if category == "Cs" else "?" if category == "Cc" or ch in "\u2028\u2029" else ch)
    return "".join(out)


def display_name(text: str) -> str:
    """A name for people to read: `printable`, with runs of white space as one space."""
    return " ".join(printable(text).split())


def _cap_bytes(text: str, limit: int) -> str:
    """The longest prefix of `text` whose UTF-8 form fits in `limit` bytes (file names count bytes)."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


# Ids stay far below NAME_MAX (255 bytes) so that a collision suffix ("-2") and the file name
# suffixes (".html", ".json", ".log") always fit without cutting the id again.
MAX_ID_BYTES = 100


def clean_id(student: str) -> str:
    """The form every student id takes, whoever made it (file names here, platform parsers):
    `printable`, without path separators, control characters or leading dots, at most
    MAX_ID_BYTES bytes."""
    text = printable(re.sub(r"[\\/\x00-\x1f\x7f-\x9f]", "_", student)).strip().lstrip(".")
    return _cap_bytes(text, MAX_ID_BYTES).strip() or "sin_nombre"


def id_key(student: str) -> str:
    """What two ids are compared on: NFC and case-insensitive ("Ana" == "ana"; NFC "José" == NFD)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", student).casefold())


def student_id(name: str) -> str:
    """Student id from a file or folder name: the stem, cleaned (see `clean_id`).

    The suffix that Moodle's "download all submissions" adds to folder names is dropped.
    """
    stem = Path(name).stem if Path(name).suffix.lower() in NOTEBOOK_SUFFIXES + (".zip",) else name
    stem = re.sub(r"_assignsubmission_\w*$", "", stem)
    return clean_id(stem)


# Everything else a batch writes into OUT (or that a later feature will): a report or folder
# named after a student must never be one of these. Compared case-insensitively, on the part
# before the first dot; Windows device names too, so that OUT can be copied to any machine.
RESERVED_STEMS = frozenset({
    "index", "review", "similarity", "summary", "grades", "results", "junit", "gradebook", "logs",
    "work", "gradescope", "extracted", "cache", "exports", "moodle", "canvas", "report", "reports",
    "con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10)),
})
MAX_STEM_BYTES = 160


def file_stem(student: str) -> str:
    """The file name (without suffix) of everything written for `student`: reports, logs,
    results/, work/, gradescope/.

    Ids that are already safe (letters, digits, "_", "-", "." not first) are kept as they are.
    Any other id -- changed characters, a reserved name such as "index", or cut to MAX_STEM_BYTES --
    gets "~" and a hash of the whole id. A kept id never contains "~", so it can never equal a
    changed one. Within a batch, `resolve_collisions` additionally guarantees that no two hand-ins
    share a stem (it compares stems, not hashes).
    """
    original = unicodedata.normalize("NFC", student)
    name = re.sub(r"[^\w.\-]+", "_", original).strip("._") or "entrega"
    cut = _cap_bytes(name, MAX_STEM_BYTES)
    if cut != original or name.split(".")[0].casefold() in RESERVED_STEMS:
        digest = hashlib.sha256(student.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        cut = f"{cut}~{digest}"
    return cut


def folder_record(path: Path, student: str) -> StudentRecord:
    """Who handed in a plain file, folder or ZIP: its name, cleaned for display."""
    return StudentRecord(display_name=display_name(student) or "sin nombre", platform="folder",
                         source_name=printable(path.name))


def _keys(student: str) -> set[str]:
    # Two hand-ins collide when their ids match (case-insensitively, after NFC) or when their
    # file names would (a case-insensitive file system sees "Ana.html" and "ana.html" as one).
    return {"id:" + id_key(student), "file:" + file_stem(student).casefold()}


def resolve_collisions(subs: list[Submission]) -> list[Submission]:
    """Give every hand-in of a batch its own id, in one pass over all of them (whoever made the
    ids); returns `subs` sorted by id.

    Ids are cleaned (`clean_id`). When ids or their file names collide, the first by id and then
    by path keeps its id and every other gets a visible suffix ("ana-2", free of any other
    collision); both hand-ins get a Spanish note saying so. The order does not depend on the
    order the hand-ins were found, so a re-run gives every hand-in the same id (resume).
    """
    for sub in subs:
        sub.student = clean_id(sub.student)
    order = sorted(subs, key=lambda s: (natural_key(s.student), s.student, os.fsencode(s.path)))
    owner: dict[str, Submission] = {}
    clashing = []
    for sub in order:
        keys = _keys(sub.student)
        if keys & owner.keys():
            clashing.append(sub)
        else:
            owner.update(dict.fromkeys(keys, sub))
    for sub in clashing:
        first = owner[min(_keys(sub.student) & owner.keys())]
        old, n = sub.student, 2
        while _keys(f"{old}-{n}") & owner.keys():
            n += 1
        sub.student = f"{old}-{n}"
        owner.update(dict.fromkeys(_keys(sub.student), sub))
        sub.notes.append(f"El nombre de esta entrega («{old}») coincide con el de otra entrega "
                         f"(«{first.student}») sin distinguir mayúsculas, acentos escritos de otra "
                         f"forma ni símbolos; para no mezclarlas, esta se identifica como «{sub.student}».")
        first.notes.append(f"Otra entrega tenía un nombre que coincide con el de esta («{old}»); esa "
                           f"otra se identifica como «{sub.student}» y esta sigue como «{first.student}».")
    order.sort(key=lambda s: (natural_key(s.student), s.student, os.fsencode(s.path)))
    return order
