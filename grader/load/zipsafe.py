"""Extract a hand-in ZIP safely: every member is checked before anything is written.

Refused: paths leaving the folder (absolute, drive letters, ".."), symlinks, more than
MAX_ZIP_MEMBERS members, more than MAX_ZIP_TOTAL_BYTES once extracted (counted on the real bytes,
not the headers), compression bombs, encrypted or broken archives. A refusal is a `FileProblem`
with a Spanish `LoadError`, and leaves no partial folder behind.
"""

from __future__ import annotations

import atexit
import hashlib
import re
import shutil
import tempfile
import zipfile
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


def _zip_error(code: str, rel: str, why: str) -> FileProblem:
    return FileProblem(LoadError(code, f"El ZIP «{rel}» no se ha abierto: {why}", rel))


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
    only a PDF can say so. Raises `FileProblem` (a `LoadError`)
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

