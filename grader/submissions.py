"""Find hand-ins and load them into one `Submission` type.

A hand-in is a notebook (`.ipynb`), a script (`.py`, read with jupytext), a jupytext Markdown
notebook (`.md`), a folder holding one student's several files, or a ZIP of any of these. Bad
content never raises: it becomes `Submission.load_error` (Spanish message naming the file), so a
batch always goes on. Only a path that does not exist raises (`GraderError`): that is the
instructor's mistake, not the student's. ZIPs are checked (paths, symlinks, member count, size,
compression ratio) before anything is extracted.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import shutil
import tempfile
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import nbformat
import nbformat.reader

from grader.errors import GraderError


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

    @property
    def code_cells(self) -> list[Cell]:
        return [c for c in self.cells if c.cell_type == "code"]


MAX_FILE_BYTES = 20 * 1024 * 1024
NOTEBOOK_SUFFIXES = (".ipynb", ".py", ".md")
IGNORED_NAMES = {"__MACOSX", ".ipynb_checkpoints", "__pycache__", ".git", ".venv", "venv",
                 "site-packages", "dist-packages", "node_modules"}
MAX_HANDIN_FILES = 100  # more notebooks/scripts than this is an uploaded library, not homework
_KIND = {".ipynb": "ipynb", ".py": "py", ".md": "md"}


class _FileProblem(Exception):
    """Internal: one file cannot be loaded; carries the `LoadError` to report."""

    def __init__(self, error: LoadError):
        super().__init__(error.message)
        self.error = error


# ---------------------------------------------------------------- names and ordering

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


# ---------------------------------------------------------------- reading one file

def _read_bytes(path: Path, rel: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            mb = size / 1024 / 1024
            raise _FileProblem(LoadError(
                "too_large",
                f"El fichero «{rel}» ocupa {mb:.1f} MB, más que el máximo de "
                f"{MAX_FILE_BYTES // 1024 // 1024} MB; borra salidas o imágenes grandes y vuelve a entregarlo.",
                rel))
        data = path.read_bytes()
    except OSError as exc:
        raise _FileProblem(LoadError(
            "unreadable", f"No se ha podido leer el fichero «{rel}» ({exc.strerror}).", rel)) from exc
    if not data.strip():
        raise _FileProblem(LoadError("empty", f"El fichero «{rel}» está vacío.", rel))
    return data


def _decode(data: bytes, rel: str, notes: list[str]) -> str:
    """Text of a notebook or script; UTF-8 first, UTF-16 by BOM, Latin-1 as a last resort."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:8192]:
        raise _FileProblem(LoadError(
            "binary", f"El fichero «{rel}» no es de texto (parece un fichero binario); "
            "entrega el cuaderno .ipynb o el script .py original.", rel))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Windows editors still save scripts as cp1252; Latin-1 never fails and keeps the text.
        notes.append(f"«{rel}» no estaba en UTF-8; se ha leído como Latin-1.")
        return data.decode("latin-1")


def _plain(value):
    """NotebookNode -> plain dicts/lists (outputs cross module boundaries as plain JSON)."""
    return json.loads(json.dumps(value))


def _source(value) -> str:
    return "".join(map(str, value)) if isinstance(value, list) else str(value or "")


def _load_ipynb(path: Path, rel: str, notes: list[str], text: str | None = None) -> list[Cell]:
    if text is None:
        text = _decode(_read_bytes(path, rel), rel, notes)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _FileProblem(LoadError(
            "invalid_json", f"El cuaderno «{rel}» no es un JSON válido (línea {exc.lineno}, "
            f"columna {exc.colno}: {exc.msg}); ábrelo en Jupyter, guárdalo y vuelve a entregarlo.",
            rel)) from exc
    except RecursionError as exc:  # absurdly deep nesting: no notebook looks like this
        raise _FileProblem(LoadError(
            "invalid_json", f"El cuaderno «{rel}» no es un JSON válido (anidamiento excesivo).",
            rel)) from exc
    nb = None
    is_v4 = isinstance(raw, dict) and isinstance(raw.get("cells"), list)
    is_old = isinstance(raw, dict) and isinstance(raw.get("worksheets"), list)
    if not (is_v4 or is_old):
        raise _FileProblem(LoadError(
            "not_a_notebook", f"El fichero «{rel}» es JSON pero no es un cuaderno de Jupyter "
            "(no tiene celdas).", rel))
    if is_v4:
        _repair_v4(raw)
    version = raw.get("nbformat")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # reader.reads (not from_dict) also rejoins the line lists of sources and outputs.
            nb = nbformat.convert(nbformat.reader.reads(json.dumps(raw)), 4)
            cells = [dict(c) for c in nb.cells]
    except Exception:  # noqa: BLE001 - nbformat raises many types; we fall back to raw cells
        if not is_v4:
            raise _FileProblem(LoadError(
                "not_a_notebook", f"El cuaderno «{rel}» tiene un formato antiguo que no se puede "
                "convertir; ábrelo en Jupyter, guárdalo y vuelve a entregarlo.", rel)) from None
        cells = raw["cells"]
        notes.append(f"«{rel}» tiene errores de formato; se han leído sus celdas tal cual.")
    if isinstance(version, int) and version < 4:
        notes.append(f"«{rel}» estaba en formato nbformat v{version}; se ha convertido a v4.")
    try:
        if nb is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                nbformat.validate(nb)
    except Exception:  # noqa: BLE001 - like Jupyter, a schema complaint does not stop reading
        notes.append(f"«{rel}» no cumple del todo el esquema de nbformat; se ha cargado igualmente.")
    out = []
    for i, c in enumerate(cells):
        kind = c.get("cell_type") if c.get("cell_type") in ("code", "markdown", "raw") else "raw"
        count = c.get("execution_count")
        out.append(Cell(
            index=i, cell_type=kind, source=_source(c.get("source")),
            outputs=_plain(c.get("outputs") or []) if kind == "code" else [],
            execution_count=count if isinstance(count, int) else None,
            origin=Origin(rel, i, 1)))
    return out


def _repair_v4(raw: dict) -> None:
    """Fill in keys whose absence makes nbformat refuse an otherwise readable notebook."""
    raw.setdefault("nbformat", 4)
    raw.setdefault("nbformat_minor", 4)
    if not isinstance(raw.get("metadata"), dict):
        raw["metadata"] = {}
    raw["cells"] = [c for c in raw["cells"] if isinstance(c, dict)]
    for c in raw["cells"]:
        if not isinstance(c.get("metadata"), dict):
            c["metadata"] = {}
        c.setdefault("source", "")
        if c.get("cell_type") == "code":
            if not isinstance(c.get("outputs"), list):
                c["outputs"] = []
            c.setdefault("execution_count", None)


def _load_text(path: Path, rel: str, notes: list[str]) -> list[Cell]:
    """A .py (percent/light script) or .md (fenced code blocks) file read with jupytext."""
    text = _decode(_read_bytes(path, rel), rel, notes)
    if text.lstrip().startswith("{") and '"cells"' in text:
        # A notebook renamed to .py/.md still is a notebook; load it as one.
        try:
            cells = _load_ipynb(path, rel, [], text)
        except _FileProblem:
            pass
        else:
            notes.append(f"«{rel}» es en realidad un cuaderno .ipynb con otra extensión; se ha leído como cuaderno.")
            return cells
    ext = path.suffix.lower()
    fmt: dict = {"extension": ext}
    # A plain script means what Python means: "# %matplotlib" stays a comment. Only files written
    # by jupytext itself (which carry its header) get their commented magics back.
    if ext == ".py" and "jupytext:" not in text[:2000]:
        fmt["comment_magics"] = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = jupytext.reads(text, fmt=fmt)
        cells = [(c.cell_type, c.source) for c in nb.cells]
    except Exception:  # noqa: BLE001 - jupytext is only a splitter here; keep the whole text
        notes.append(f"«{rel}» no se ha podido dividir en celdas; se carga como una sola celda.")
        cells = [("code" if ext == ".py" else "markdown", text)]
    lines = text.splitlines()
    starts = _locate(lines, [src for _, src in cells])
    return [Cell(index=i, cell_type=kind if kind in ("code", "markdown", "raw") else "raw",
                 source=src, origin=Origin(rel, i, start))
            for i, ((kind, src), start) in enumerate(zip(cells, starts))]


def _locate(lines: list[str], sources: list[str]) -> list[int]:
    """1-based line in the file where each cell's source starts.

    jupytext does not report positions, so each cell's first non-blank line is searched for in
    order; commented copies ("# text" for markdown in .py, "# %magic") count as matches.
    """
    starts, cursor, last = [], 0, 0
    for src in sources:
        src_lines = src.splitlines()
        offset, first = next(((k, l.strip()) for k, l in enumerate(src_lines) if l.strip()),
                             (0, None))
        found = None
        if first is not None:
            for lo in (cursor, last):
                found = next((i for i in range(lo, len(lines)) if _same_line(lines[i], first)), None)
                if found is not None:
                    break
        if found is None:
            found = min(cursor, max(len(lines) - 1, 0)) + offset
        starts.append(found - offset + 1)
        last = found + 1
        cursor = found - offset + max(len(src_lines), 1)
    return starts


def _same_line(file_line: str, cell_line: str) -> bool:
    s = file_line.strip()
    return s == cell_line or (s.startswith("#") and s[1:].strip() == cell_line)


def _load_file(path: Path, rel: str, notes: list[str]) -> list[Cell]:
    if path.suffix.lower() == ".ipynb":
        return _load_ipynb(path, rel, notes)
    return _load_text(path, rel, notes)


# ---------------------------------------------------------------- ZIP archives

MAX_ZIP_MEMBERS = 2000
MAX_ZIP_TOTAL_BYTES = 500 * 1024 * 1024
# A member bigger than any loadable notebook (MAX_FILE_BYTES) that compresses more than this is a
# bomb. Smaller members are not judged by ratio: Keras progress bars compress extremely well, and
# the total-size limit bounds them anyway.
MAX_ZIP_RATIO = 100
_TEMP_DIRS: list[str] = []


def _default_workdir() -> Path:
    if not _TEMP_DIRS:
        _TEMP_DIRS.append(tempfile.mkdtemp(prefix="grader-zip-"))
        atexit.register(shutil.rmtree, _TEMP_DIRS[0], True)
    return Path(_TEMP_DIRS[0])


def _member_name(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if not info.flag_bits & 0x800:
        # Without the UTF-8 flag Python decodes names as cp437, but macOS and most Linux tools
        # write UTF-8 anyway: recover "García" instead of "Garc├¡a".
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return name.replace("\\", "/")


def _zip_error(code: str, rel: str, why: str) -> _FileProblem:
    return _FileProblem(LoadError(code, f"El ZIP «{rel}» no se ha abierto: {why}", rel))


def _check_zip(zf: zipfile.ZipFile, rel: str) -> list[tuple[zipfile.ZipInfo, list[str]]]:
    """Refuse the whole archive before writing anything if one member is unsafe."""
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_MEMBERS:
        raise _zip_error("zip_too_many_files", rel,
                         f"contiene {len(infos)} ficheros (el máximo es {MAX_ZIP_MEMBERS}).")
    members, total = [], 0
    for info in infos:
        name = _member_name(info)
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
            raise _zip_error("zip_unsafe_path", rel,
                             f"contiene una ruta peligrosa («{name}») que saldría de la carpeta.")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise _zip_error("zip_symlink", rel,
                             f"contiene un enlace simbólico («{name}»); entrega los ficheros reales.")
        total += info.file_size
        if info.file_size > MAX_FILE_BYTES and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
            raise _zip_error("zip_bomb", rel, f"«{name}» se descomprime a un tamaño desproporcionado "
                             f"({info.file_size // 1024 // 1024} MB); no parece una entrega real.")
        members.append((info, parts))
    if total > MAX_ZIP_TOTAL_BYTES:
        raise _zip_error("zip_too_large", rel, f"descomprimido ocuparía {total // 1024 // 1024} MB "
                         f"(el máximo es {MAX_ZIP_TOTAL_BYTES // 1024 // 1024} MB).")
    return members


def extract_zip(zip_path: Path, workdir: Path | None = None, rel: str | None = None) -> Path:
    """Extract a ZIP into a fresh folder under `workdir` and return that folder.

    Hidden files and __MACOSX are skipped; other files are kept so that a student folder with
    only a PDF can say so. Raises `_FileProblem` (a `LoadError`)
    for unsafe or broken archives; nothing outside the new folder is ever written.
    """
    rel = rel or zip_path.name
    tag = hashlib.sha256(str(zip_path.resolve()).encode()).hexdigest()[:8]
    dest = (workdir or _default_workdir()) / f"{student_id(zip_path.name)}-{tag}"
    written = 0
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = _check_zip(zf, rel)
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            for info, parts in members:
                if not parts or any(is_ignored(p) for p in parts):
                    continue
                if info.is_dir():
                    dest.joinpath(*parts).mkdir(parents=True, exist_ok=True)
                    continue
                target = dest.joinpath(*parts)
                if not target.resolve().is_relative_to(dest.resolve()):
                    raise _zip_error("zip_unsafe_path", rel, f"la ruta «{'/'.join(parts)}» saldría de la carpeta.")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    # Count real bytes: the sizes in the headers are written by the sender.
                    while chunk := src.read(1024 * 1024):
                        written += len(chunk)
                        if written > MAX_ZIP_TOTAL_BYTES:
                            raise _zip_error("zip_too_large", rel, "descomprimido supera "
                                             f"{MAX_ZIP_TOTAL_BYTES // 1024 // 1024} MB.")
                        out.write(chunk)
    except _FileProblem:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except RuntimeError as exc:  # zipfile raises RuntimeError for password-protected members
        shutil.rmtree(dest, ignore_errors=True)
        raise _zip_error("zip_encrypted", rel, "está protegido con contraseña; entrégalo sin contraseña.") from exc
    except Exception as exc:  # noqa: BLE001 - BadZipFile, zlib.error, EOFError, struct.error...
        shutil.rmtree(dest, ignore_errors=True)
        raise _zip_error("zip_invalid", rel, f"está dañado o no es un ZIP ({type(exc).__name__}).") from exc
    return dest


# ---------------------------------------------------------------- one hand-in

@dataclass
class _Found:
    files: list[tuple[str, Path]] = field(default_factory=list)  # (relative name, real path)
    others: list[str] = field(default_factory=list)  # ignored files, for the "no_notebook" message
    errors: list[LoadError] = field(default_factory=list)


def _unwrap(root: Path) -> Path:
    """A ZIP often holds one folder around everything: look inside it."""
    for _ in range(4):
        entries = [e for e in root.iterdir() if not is_ignored(e.name)]
        if len(entries) != 1 or not entries[0].is_dir() or entries[0].is_symlink():
            break
        root = entries[0]
    return root


def _collect(root: Path, workdir: Path | None, allow_zip: bool, found: _Found,
             notes: list[str], prefix: str = "") -> None:
    try:
        entries = sorted(root.iterdir(), key=lambda e: natural_key(e.name))
    except OSError as exc:
        found.errors.append(LoadError("unreadable", f"No se ha podido leer la carpeta "
                                      f"«{prefix or root.name}» ({exc.strerror}).", prefix or root.name))
        return
    for entry in entries:
        rel = f"{prefix}{entry.name}"
        # Symlinks could point anywhere on the grading machine; FIFOs and devices would block.
        if is_ignored(entry.name) or entry.is_symlink() or not (entry.is_dir() or entry.is_file()):
            continue
        if entry.is_dir():
            _collect(entry, workdir, allow_zip, found, notes, rel + "/")
        elif entry.suffix.lower() in NOTEBOOK_SUFFIXES:
            found.files.append((rel, entry))
        elif entry.suffix.lower() == ".zip" and allow_zip:
            try:
                inner = _unwrap(extract_zip(entry, workdir, rel))
            except _FileProblem as problem:
                found.errors.append(problem.error)
                continue
            _collect(inner, workdir, False, found, notes, rel + "/")
        elif entry.suffix.lower() == ".zip":
            notes.append(f"Se ha ignorado «{rel}»: solo se abre un nivel de ZIP dentro de otro ZIP.")
        else:
            found.others.append(rel)


def _drop_exports(found: _Found, notes: list[str]) -> None:
    """"trabajo2.ipynb" + "trabajo2.py" is one notebook and its export: keep only the notebook."""
    notebooks = {str(Path(rel).with_suffix("")).casefold() for rel, p in found.files
                 if p.suffix.lower() == ".ipynb"}
    kept = []
    for rel, path in found.files:
        if path.suffix.lower() != ".ipynb" and str(Path(rel).with_suffix("")).casefold() in notebooks:
            notes.append(f"Se ha ignorado «{rel}» porque repite el cuaderno "
                         f"«{Path(rel).with_suffix('.ipynb').name}».")
        else:
            kept.append((rel, path))
    found.files = kept


def _digest(files: list[tuple[str, Path]]) -> str:
    total = hashlib.sha256()
    for rel, path in sorted(files):
        one = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(1024 * 1024):
                    one.update(chunk)
        except OSError:
            one.update(b"<unreadable>")
        total.update(rel.encode("utf-8") + b"\0" + one.digest())
    return total.hexdigest()


def load_submission(path: str | Path, student: str | None = None, *,
                    workdir: Path | None = None) -> Submission:
    """Load one hand-in: a .ipynb/.py/.md file, one student's folder, or one student's ZIP.

    Never raises for bad content: the result carries `load_error` instead. A student folder may
    hold one ZIP level (extracted under `workdir`, a temporary folder if None).
    """
    path = Path(path)
    if not path.exists():
        raise GraderError(f"{path}: the hand-in does not exist")
    student = student or student_id(path.name)
    notes: list[str] = []
    found = _Found()
    suffix = path.suffix.lower() if path.is_file() else ""
    if suffix == ".zip":
        try:
            root = _unwrap(extract_zip(path, workdir))
        except _FileProblem as problem:
            return Submission(student, path, "unknown", load_error=problem.error,
                              files=[path.name], digest=_digest([(path.name, path)]))
        _collect(root, workdir, False, found, notes)
    elif path.is_file() or not path.is_dir():
        root = path.parent
        if suffix not in NOTEBOOK_SUFFIXES:
            error = LoadError("unsupported_type", f"«{path.name}» no es un cuaderno .ipynb ni un "
                              "script .py/.md; entrega el cuaderno de Jupyter.", path.name)
            return Submission(student, path, "unknown", load_error=error, files=[path.name],
                              digest=_digest([(path.name, path)]))
        found.files.append((path.name, path))
    else:
        root = path
        _collect(path, workdir, True, found, notes)
    _drop_exports(found, notes)
    if len(found.files) > MAX_HANDIN_FILES:
        error = LoadError("too_many_files", f"La entrega «{path.name}» contiene {len(found.files)} "
                          f"ficheros .ipynb/.py/.md (el máximo es {MAX_HANDIN_FILES}); entrega solo "
                          "tus cuadernos o scripts, sin bibliotecas ni entornos virtuales.", path.name)
        return Submission(student, path, "unknown", load_error=error, source_dir=root,
                          files=[rel for rel, _ in found.files], digest=_digest(found.files))
    found.files.sort(key=lambda f: file_order_key(f[0]))
    sub = _merge(student, path, found, notes)
    # Run where the files really are (inside an extracted ZIP, or a "src/" sub-folder).
    sub.source_dir = Path(os.path.commonpath([p.parent for _, p in found.files])) if found.files else root
    return sub


def _merge(student: str, path: Path, found: _Found, notes: list[str]) -> Submission:
    sub = Submission(student, path, "unknown", files=[rel for rel, _ in found.files],
                     notes=notes, digest=_digest(found.files), file_errors=list(found.errors))
    kinds = set()
    for rel, real in found.files:
        try:
            cells = _load_file(real, rel, notes)
        except _FileProblem as problem:
            sub.file_errors.append(problem.error)
            continue
        except Exception as exc:  # noqa: BLE001 - a strange file must not stop the batch
            sub.file_errors.append(LoadError(
                "malformed", f"El fichero «{rel}» tiene un formato que no se ha podido interpretar "
                f"({type(exc).__name__}); ábrelo en Jupyter, guárdalo y vuelve a entregarlo.", rel))
            continue
        kinds.add(_KIND[real.suffix.lower()])
        for cell in cells:
            cell.index = len(sub.cells)
            sub.cells.append(cell)
    if len(kinds) == 1:
        sub.kind = next(iter(kinds))
    elif kinds:
        sub.kind = "mixed"
    elif len(found.files) == 1:
        sub.kind = _KIND[found.files[0][1].suffix.lower()]
    if not kinds:
        sub.load_error = sub.file_errors.pop(0) if sub.file_errors else _no_notebook(path, found)
    tail = " El resto de ficheros sí se ha cargado." if kinds else ""
    notes.extend(error.message + tail for error in sub.file_errors)
    unnumbered = [rel for rel, _ in found.files
                  if rel.lower().endswith(".ipynb") and exercise_number(Path(rel).name) is None]
    if len(unnumbered) > 1:
        # Often two versions of the same notebook ("trabajo2.ipynb", "trabajo2_final.ipynb").
        notes.append("La entrega tiene varios cuadernos; se tratan como uno solo, uno tras otro, en "
                     "este orden: " + ", ".join(f"«{r}»" for r in unnumbered) + ".")
    return sub


def _no_notebook(path: Path, found: _Found) -> LoadError:
    seen = ", ".join(f"«{o}»" for o in found.others[:3]) + (" ..." if len(found.others) > 3 else "")
    detail = f" Solo contiene: {seen}." if seen else " Está vacía."
    return LoadError("no_notebook", f"No se ha encontrado ningún cuaderno (.ipynb) ni script "
                     f"(.py/.md) en «{path.name}».{detail}", path.name)


# ---------------------------------------------------------------- a batch of hand-ins

def find_submissions(path: str | Path, workdir: Path | None = None) -> list[Submission]:
    """All hand-ins under `path`, sorted by student id.

    `path` is one hand-in file, a folder of hand-ins (one file, sub-folder or ZIP per student),
    or a ZIP of either. A folder holding only per-exercise files of one student (see
    `looks_like_one_student`) is one hand-in. A ZIP that cannot be opened safely becomes one
    Submission with a load_error; it never stops the batch.
    """
    path = Path(path)
    if not path.exists():
        raise GraderError(f"{path}: no such file or folder of hand-ins")
    if path.is_file() and path.suffix.lower() == ".zip":
        try:
            root = extract_zip(path, workdir)
        except _FileProblem as problem:
            return [Submission(student_id(path.name), path, "unknown", files=[path.name],
                               load_error=problem.error, digest=_digest([(path.name, path)]))]
        return _find_in_folder(root, student_id(path.name), workdir)
    if path.is_file():
        return [load_submission(path, workdir=workdir)]
    return _find_in_folder(path, student_id(path.name), workdir)


# A batch folder's own documentation (submissions/README.md) is not a student's hand-in.
_BATCH_DOCS_RE = re.compile(r"^(readme|leeme|license|licencia|changelog)([._-]|$)", re.IGNORECASE)


def _batch_entries(root: Path) -> list[Path]:
    return sorted((e for e in root.iterdir() if not is_ignored(e.name) and not e.is_symlink()
                   and not (e.is_file() and _BATCH_DOCS_RE.match(e.name))),
                  key=lambda e: natural_key(e.name))


def _find_in_folder(root: Path, name: str, workdir: Path | None) -> list[Submission]:
    root, name = _unwrap_batch(root, name)
    entries = _batch_entries(root)
    files = [e for e in entries if e.is_file() and e.suffix.lower() in NOTEBOOK_SUFFIXES]
    others = [e for e in entries if e.is_dir() or (e.is_file() and e.suffix.lower() == ".zip")]
    if not others and looks_like_one_student([f.name for f in files]):
        return [load_submission(root, name, workdir=workdir)]
    subs = [load_submission(e, student_id(e.name), workdir=workdir) for e in files + others]
    subs.sort(key=lambda s: (natural_key(s.student), str(s.path)))
    seen: dict[str, int] = {}
    for sub in subs:  # ids name report files: unique even on case-insensitive file systems
        key = sub.student.casefold()
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            old, sub.student = sub.student, f"{sub.student}-{seen[key]}"
            sub.notes.append(f"Hay otra entrega con el nombre «{old}»; esta se identifica como «{sub.student}».")
    return subs


def _unwrap_batch(root: Path, name: str) -> tuple[Path, str]:
    """Step into a lone wrapper folder ("entregas/") unless it is itself one student's folder."""
    for _ in range(4):
        entries = _batch_entries(root)
        if len(entries) != 1 or not entries[0].is_dir():
            break
        inner = [e for e in entries[0].iterdir() if not is_ignored(e.name) and not e.is_symlink()]
        # One ZIP alone is that student's upload (Moodle: "Name_123_assignsubmission_file_/x.zip").
        zips = [e for e in inner if e.is_file() and e.suffix.lower() == ".zip"]
        # A sub-folder with notebooks in it is a student; one with only images is not.
        holds_students = len(zips) > 1 or any(
            e.is_dir() and any(f.suffix.lower() in NOTEBOOK_SUFFIXES for f in e.rglob("*")) for e in inner)
        names = [e.name for e in inner if e.suffix.lower() in NOTEBOOK_SUFFIXES]
        if not holds_students and (len(names) <= 1 or looks_like_one_student(names)):
            break  # the lone folder is one student's hand-in: keep it as a batch entry
        root, name = entries[0], student_id(entries[0].name)
    return root, name


# ---------------------------------------------------------------- sections

_ATX_RE = re.compile(r"^ {0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
_HTML_RE = re.compile(r"<h([1-6])[^>]*>(.*?)</h\1\s*>", re.IGNORECASE)


def markdown_headings(sub: Submission) -> list[tuple[int, int, str]]:
    """(cell index, level, text) of every Markdown heading, in order (ATX, setext and <hN>)."""
    return [(cell.index, level, text) for cell in sub.cells for level, text in _cell_headings(cell)]


def _cell_headings(cell: Cell) -> list[tuple[int, str]]:
    if cell.cell_type != "markdown":
        return []
    found, fenced, previous = [], False, ""
    for line in cell.source.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and (m := _ATX_RE.match(line)):
            found.append((len(m.group(1)), _clean(m.group(2))))
        elif not fenced and previous.strip() and re.fullmatch(r" {0,3}(=+|-+)\s*", line) \
                and not _ATX_RE.match(previous):
            found.append((1 if "=" in line else 2, _clean(previous)))
        elif not fenced:  # <h2>...</h2> on one line, as notebooks write them
            found.extend((int(m.group(1)), _clean(re.sub(r"<[^>]+>", "", m.group(2))))
                         for m in _HTML_RE.finditer(line))
        previous = "" if fenced else line
    return found


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().strip("*_").strip())


def section_of(sub: Submission, cell_index: int) -> str | None:
    """The nearest heading at or above a cell, within the same file.

    For cells of a .py file, or of a multi-file hand-in, with no heading above them: the file
    name. For a single notebook with no heading above the cell: None.
    """
    cell = sub.cells[cell_index]
    for other in reversed(sub.cells[: cell_index + 1]):  # walk up: cheap for every cell in turn
        if other.origin.file != cell.origin.file:
            break
        if headings := _cell_headings(other):
            return headings[-1][1]
    if cell.origin.file.lower().endswith(".py") or len(sub.files) > 1:
        return Path(cell.origin.file).name
    return None
