"""Find hand-ins and load them into one `Submission` type.

A hand-in is a notebook (`.ipynb`), a script (`.py`, read with jupytext), a jupytext Markdown
notebook (`.md`), a folder holding one student's several files, or a ZIP of any of these. Bad
content never raises: it becomes `Submission.load_error` (Spanish message naming the file), so a
batch always goes on. Only a path that does not exist raises (`GraderError`): that is the
instructor's mistake, not the student's. ZIPs are checked (paths, symlinks, member count, size,
compression ratio) before anything is extracted.

This module finds hand-ins and merges their files; the pieces live beside it (see `grader.load`).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import GraderError
from grader.load.names import (
    NOTEBOOK_SUFFIXES,
    exercise_number,
    file_order_key,
    folder_record,
    is_ignored,
    looks_like_one_student,
    natural_key,
    printable,
    resolve_collisions,
    student_id,
)
from grader.load.platforms import group_entries, parse_name, platform_submissions
from grader.load.reader import read_cells
from grader.load.submission import Cell, FileProblem, LoadError, Submission
from grader.load.zipsafe import ExtractBudget, extract_zip

MAX_HANDIN_FILES = 100  # more notebooks/scripts than this is an uploaded library, not homework
_KIND = {".ipynb": "ipynb", ".py": "py", ".md": "md"}


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


def _collect(root: Path, workdir: Path | None, budget: ExtractBudget | None, found: _Found,
             notes: list[str], prefix: str = "") -> None:
    """Every file under `root` into `found`. `budget` is None where ZIPs are not opened (inside a
    ZIP); relative names are `printable`: they name files in Spanish messages and in results."""
    try:
        entries = sorted(root.iterdir(), key=lambda e: natural_key(e.name))
    except OSError as exc:
        found.errors.append(LoadError("unreadable", f"No se ha podido leer la carpeta "
                                      f"«{prefix or printable(root.name)}» ({exc.strerror}).",
                                      prefix or printable(root.name)))
        return
    for entry in entries:
        rel = f"{prefix}{printable(entry.name)}"
        # Symlinks could point anywhere on the grading machine; FIFOs and devices would block.
        if is_ignored(entry.name) or entry.is_symlink() or not (entry.is_dir() or entry.is_file()):
            continue
        if entry.is_dir():
            _collect(entry, workdir, budget, found, notes, rel + "/")
        elif entry.suffix.lower() in NOTEBOOK_SUFFIXES:
            found.files.append((rel, entry))
        elif entry.suffix.lower() == ".zip" and budget is not None:
            try:
                inner = _unwrap(extract_zip(entry, workdir, rel, budget))
            except FileProblem as problem:
                found.errors.append(problem.error)
                continue
            _collect(inner, workdir, None, found, notes, rel + "/")
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
    hold one ZIP level (extracted under `workdir`, a temporary folder if None); all the ZIPs of
    one hand-in share one extraction budget.
    """
    path = Path(path)
    if not path.exists():
        raise GraderError(f"{path}: the hand-in does not exist")
    student = student or student_id(path.name)
    sub = _load(path, student, workdir)
    sub.record = sub.record or folder_record(path, student)
    return sub


def _load(path: Path, student: str, workdir: Path | None) -> Submission:
    name = printable(path.name)
    budget = ExtractBudget()
    notes: list[str] = []
    found = _Found()
    suffix = path.suffix.lower() if path.is_file() else ""
    if suffix == ".zip":
        try:
            root = _unwrap(extract_zip(path, workdir, name, budget))
        except FileProblem as problem:
            return Submission(student, path, "unknown", load_error=problem.error,
                              files=[name], digest=_digest([(name, path)]))
        _collect(root, workdir, None, found, notes)
    elif path.is_file() or not path.is_dir():
        root = path.parent
        if suffix not in NOTEBOOK_SUFFIXES:
            error = LoadError("unsupported_type", f"«{name}» no es un cuaderno .ipynb ni un "
                              "script .py/.md; entrega el cuaderno de Jupyter.", name)
            return Submission(student, path, "unknown", load_error=error, files=[name],
                              digest=_digest([(name, path)]))
        found.files.append((name, path))
    else:
        root = path
        _collect(path, workdir, budget, found, notes)
    _drop_exports(found, notes)
    if len(found.files) > MAX_HANDIN_FILES:
        error = LoadError("too_many_files", f"La entrega «{name}» contiene {len(found.files)} "
                          f"ficheros .ipynb/.py/.md (el máximo es {MAX_HANDIN_FILES}); entrega solo "
                          "tus cuadernos o scripts, sin bibliotecas ni entornos virtuales.", name)
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
            cells = read_cells(real, rel, notes)
        except FileProblem as problem:
            sub.file_errors.append(problem.error)
            continue
        except Exception as exc:
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
    name = printable(path.name)
    return LoadError("no_notebook", f"No se ha encontrado ningún cuaderno (.ipynb) ni script "
                     f"(.py/.md) en «{name}».{detail}", name)


# ---------------------------------------------------------------- a batch of hand-ins

def find_submissions(path: str | Path, workdir: Path | None = None) -> list[Submission]:
    """All hand-ins under `path`, sorted by student id, each with an id of its own.

    `path` is one hand-in file, a folder of hand-ins (one file, sub-folder or ZIP per student),
    or a ZIP of either. A folder holding only per-exercise files of one student (see
    `looks_like_one_student`) is one hand-in. A ZIP that cannot be opened safely becomes one
    Submission with a load_error; it never stops the batch. Colliding ids are resolved in one
    pass at the end (`resolve_collisions`), whichever part of the loader made them.
    """
    path = Path(path)
    if not path.exists():
        raise GraderError(f"{path}: no such file or folder of hand-ins")
    if path.is_file() and path.suffix.lower() == ".zip":
        try:
            root = extract_zip(path, workdir)
        except FileProblem as problem:
            name = printable(path.name)
            subs = [Submission(student_id(path.name), path, "unknown", files=[name],
                               load_error=problem.error, digest=_digest([(name, path)]),
                               record=folder_record(path, student_id(path.name)))]
        else:
            subs = _find_in_folder(root, student_id(path.name), workdir)
    elif path.is_file():
        subs = [load_submission(path, workdir=workdir)]
    else:
        subs = _find_in_folder(path, student_id(path.name), workdir)
    return resolve_collisions(subs)


# A batch folder's own documentation (submissions/README.md) is not a student's hand-in.
_BATCH_DOCS_RE = re.compile(r"^(readme|leeme|license|licencia|changelog)([._-]|$)", re.IGNORECASE)


def _batch_entries(root: Path) -> list[Path]:
    return sorted((e for e in root.iterdir() if not is_ignored(e.name) and not e.is_symlink()
                   and not (e.is_file() and _BATCH_DOCS_RE.match(e.name))),
                  key=lambda e: natural_key(e.name))


def _find_in_folder(root: Path, name: str, workdir: Path | None) -> list[Submission]:
    root, name = _unwrap_batch(root, name)
    handins, entries = group_entries(_batch_entries(root))  # Moodle / Canvas "download all" names
    files = [e for e in entries if e.is_file() and e.suffix.lower() in NOTEBOOK_SUFFIXES]
    others = [e for e in entries if e.is_dir() or (e.is_file() and e.suffix.lower() == ".zip")]
    if not handins and not others and looks_like_one_student([f.name for f in files]):
        return [load_submission(root, name, workdir=workdir)]
    subs = [load_submission(e, student_id(e.name), workdir=workdir) for e in files + others]
    if handins:
        subs += platform_submissions(handins, subs, load_submission, workdir)
    return subs  # ids made unique by find_submissions' one pass (resolve_collisions)


def _unwrap_batch(root: Path, name: str) -> tuple[Path, str]:
    """Step into a lone wrapper folder ("entregas/") unless it is itself one student's folder."""
    for _ in range(4):
        entries = _batch_entries(root)
        if len(entries) != 1 or not entries[0].is_dir() or parse_name(entries[0].name, True):
            break  # (a lone "Name_123_assignsubmission_file/" is one participant, whatever it holds)
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
