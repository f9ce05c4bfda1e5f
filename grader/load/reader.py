"""Read one hand-in file (.ipynb, or .py/.md through jupytext) into `Cell`s.

Bad content raises `FileProblem` with a Spanish `LoadError` naming the file; the caller decides
whether that stops the hand-in or only that file.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import jupytext
import nbformat
import nbformat.reader

from grader.load.submission import Cell, FileProblem, LoadError, Origin

MAX_FILE_BYTES = 20 * 1024 * 1024


def _read_bytes(path: Path, rel: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            mb = size / 1024 / 1024
            raise FileProblem(LoadError(
                "too_large",
                f"El fichero «{rel}» ocupa {mb:.1f} MB, más que el máximo de "
                f"{MAX_FILE_BYTES // 1024 // 1024} MB; borra salidas o imágenes grandes y vuelve a entregarlo.",
                rel))
        data = path.read_bytes()
    except OSError as exc:
        raise FileProblem(LoadError(
            "unreadable", f"No se ha podido leer el fichero «{rel}» ({exc.strerror}).", rel)) from exc
    if not data.strip():
        raise FileProblem(LoadError("empty", f"El fichero «{rel}» está vacío.", rel))
    return data


def _decode(data: bytes, rel: str, notes: list[str]) -> str:
    """Text of a notebook or script; UTF-8 first, UTF-16 by BOM, Latin-1 as a last resort."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:8192]:
        raise FileProblem(LoadError(
            "binary", f"El fichero «{rel}» no es de texto (parece un fichero binario); "
            "entrega el cuaderno .ipynb o el script .py original.", rel))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Windows editors still save scripts as cp1252; Latin-1 never fails and keeps the text.
        notes.append(f"«{rel}» no estaba en UTF-8; se ha leído como Latin-1.")
        return data.decode("latin-1")


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _has_lone_surrogate(raw) -> bool:
    """A surrogate pair in JSON becomes one character; only a lone half stays a surrogate."""
    try:
        json.dumps(raw, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


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
        raise FileProblem(LoadError(
            "invalid_json", f"El cuaderno «{rel}» no es un JSON válido (línea {exc.lineno}, "
            f"columna {exc.colno}: {exc.msg}); ábrelo en Jupyter, guárdalo y vuelve a entregarlo.",
            rel)) from exc
    except RecursionError as exc:  # absurdly deep nesting: no notebook looks like this
        raise FileProblem(LoadError(
            "invalid_json", f"El cuaderno «{rel}» no es un JSON válido (anidamiento excesivo).",
            rel)) from exc
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(raw):
        # JSON may escape half of a character ("\\udc80"); Python keeps it, and then no UTF-8
        # writer (result JSON, sqlite, HTML) can store it: refuse it here, for this hand-in only.
        raise FileProblem(LoadError(
            "invalid_unicode", f"El cuaderno «{rel}» contiene caracteres que no son texto válido "
            "(medio carácter Unicode, «\\ud...», suelto en el JSON); ábrelo en Jupyter, guárdalo y "
            "vuelve a entregarlo.", rel))
    nb = None
    is_v4 = isinstance(raw, dict) and isinstance(raw.get("cells"), list)
    is_old = isinstance(raw, dict) and isinstance(raw.get("worksheets"), list)
    if not (is_v4 or is_old):
        raise FileProblem(LoadError(
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
    except Exception:
        if not is_v4:
            raise FileProblem(LoadError(
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
    except Exception:
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
        except FileProblem:
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
    except Exception:
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
        offset, first = next(((k, text.strip()) for k, text in enumerate(src_lines) if text.strip()),
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


def read_cells(path: Path, rel: str, notes: list[str]) -> list[Cell]:
    """Cells of one file; `rel` names it in messages, Spanish notes are appended to `notes`."""
    if path.suffix.lower() == ".ipynb":
        return _load_ipynb(path, rel, notes)
    return _load_text(path, rel, notes)
