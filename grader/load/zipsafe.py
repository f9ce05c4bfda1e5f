"""Extract a hand-in ZIP safely: every member is checked before anything is written.

Refused: paths leaving the folder (absolute, drive letters, ".."), symlinks, two members with the
same path ("last one wins" would grade a file the student may not have meant; names that differ
only in case or Unicode form are different files here, and as hand-ins of a class ZIP they get
ids of their own from `resolve_collisions`), names longer than a file system holds, more than MAX_ZIP_MEMBERS members, more
than MAX_ZIP_TOTAL_BYTES once extracted (counted on the real bytes, not the headers), compression
bombs, encrypted or broken archives. A ZIP inside a hand-in draws on the same `ExtractBudget` as
the hand-in's own ZIP, so nesting never multiplies the limits. A refusal is a `FileProblem` with a
Spanish `LoadError`, and leaves no partial folder behind.
"""

from __future__ import annotations

import atexit
import hashlib
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.load.names import is_ignored, student_id
from grader.load.reader import MAX_FILE_BYTES
from grader.load.submission import FileProblem, LoadError

MAX_ZIP_MEMBERS = 2000
MAX_ZIP_TOTAL_BYTES = 500 * 1024 * 1024
# A member bigger than any loadable notebook (MAX_FILE_BYTES) that compresses more than this is a
# bomb. Smaller members are not judged by ratio: Keras progress bars compress extremely well, and
# the total-size limit bounds them anyway.
MAX_ZIP_RATIO = 100
MAX_NAME_BYTES = 255  # NAME_MAX of Linux file systems, per path component
_TEMP_DIRS: list[str] = []


@dataclass
class ExtractBudget:
    """What one hand-in may still extract, over all its ZIPs (the outer one and those inside it)."""

    # Read at creation, not at import, so that a test can lower the module's limits.
    bytes_left: int = field(default_factory=lambda: MAX_ZIP_TOTAL_BYTES)
    members_left: int = field(default_factory=lambda: MAX_ZIP_MEMBERS)


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


def _zip_error(code: str, rel: str, why: str) -> FileProblem:
    return FileProblem(LoadError(code, f"El ZIP «{rel}» no se ha abierto: {why}", rel))


def _check_zip(zf: zipfile.ZipFile, rel: str, budget: ExtractBudget) -> list[tuple[zipfile.ZipInfo, list[str]]]:
    """Refuse the whole archive before writing anything if one member is unsafe."""
    infos = zf.infolist()
    if len(infos) > budget.members_left:
        raise _zip_error("zip_too_many_files", rel, f"contiene {len(infos)} ficheros (el máximo es "
                         f"{MAX_ZIP_MEMBERS} en toda la entrega, contando los ZIP que haya dentro).")
    members, total, seen = [], 0, set()
    for info in infos:
        name = _member_name(info)
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
            raise _zip_error("zip_unsafe_path", rel,
                             f"contiene una ruta peligrosa («{name}») que saldría de la carpeta.")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise _zip_error("zip_symlink", rel,
                             f"contiene un enlace simbólico («{name}»); entrega los ficheros reales.")
        if any(len(p.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for p in parts):
            raise _zip_error("zip_long_name", rel, f"contiene un nombre de fichero de más de "
                             f"{MAX_NAME_BYTES} bytes («{name[:60]}...»); acorta los nombres.")
        key = "/".join(parts)
        if not info.is_dir() and not any(is_ignored(p) for p in parts):
            if key in seen:
                raise _zip_error("zip_duplicate", rel, f"contiene dos ficheros con el mismo nombre "
                                 f"(«{name}») y no se sabe cuál corregir; deja solo uno y vuelve a "
                                 "entregarlo.")
            seen.add(key)
        total += info.file_size
        if info.file_size > MAX_FILE_BYTES and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
            raise _zip_error("zip_bomb", rel, f"«{name}» se descomprime a un tamaño desproporcionado "
                             f"({info.file_size // 1024 // 1024} MB); no parece una entrega real.")
        members.append((info, parts))
    if total > budget.bytes_left:
        raise _zip_error("zip_too_large", rel, _too_large(total))
    return members


def _too_large(size: int) -> str:
    return (f"descomprimido ocuparía {size // 1024 // 1024} MB o más (el máximo es "
            f"{MAX_ZIP_TOTAL_BYTES // 1024 // 1024} MB en toda la entrega, contando los ZIP que haya dentro).")


def extract_zip(zip_path: Path, workdir: Path | None = None, rel: str | None = None,
                budget: ExtractBudget | None = None) -> Path:
    """Extract a ZIP into a fresh folder under `workdir` and return that folder.

    Hidden files and __MACOSX are skipped; other files are kept so that a student folder with
    only a PDF can say so. What is written is taken from `budget` (a fresh one if None: pass the
    same one for every ZIP of one hand-in). Raises `FileProblem` (a `LoadError`)
    for unsafe or broken archives; nothing outside the new folder is ever written.
    """
    budget = budget if budget is not None else ExtractBudget()
    rel = rel or zip_path.name
    tag = hashlib.sha256(str(zip_path.resolve()).encode()).hexdigest()[:8]
    dest = (workdir or _default_workdir()) / f"{student_id(zip_path.name)}-{tag}"
    written = 0
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = _check_zip(zf, rel, budget)
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
                        if written > budget.bytes_left:
                            raise _zip_error("zip_too_large", rel, _too_large(written))
                        out.write(chunk)
            budget.bytes_left -= written
            budget.members_left -= len(members)
    except FileProblem:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except RuntimeError as exc:  # zipfile raises RuntimeError for password-protected members
        shutil.rmtree(dest, ignore_errors=True)
        raise _zip_error("zip_encrypted", rel, "está protegido con contraseña; entrégalo sin contraseña.") from exc
    except Exception as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise _zip_error("zip_invalid", rel, f"está dañado o no es un ZIP ({type(exc).__name__}).") from exc
    return dest

