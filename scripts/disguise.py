"""Disguised copies of hand-ins, for the similarity tests and bench/similarity.py.

What students do to hide a copy: rename variables and functions, rewrite or drop comments and
docstrings, move cells or whole exercises around, copy one exercise from someone else. Each
disguise takes and returns an nbformat notebook (a .py hand-in is read as a one-cell notebook).

Run: python scripts/disguise.py OUT   writes the test batch (samples, honest solutions, copies) to OUT.
"""

from __future__ import annotations

import ast
import builtins
import copy
import io
import re
import sys
import tokenize
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.honest_handins import HONEST  # noqa: E402

SAMPLES = ROOT / "submissions"
_NEW_NAMES = ["dato", "cosa", "valor", "item", "res", "obj", "aux", "tmp", "mi", "var"]


def notebook(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_code_cell(src) if kind == "code" else new_markdown_cell(src) for kind, src in cells],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    return nb


def read_notebook(path: Path) -> nbformat.NotebookNode:
    if path.suffix == ".py":
        return notebook([("code", path.read_text(encoding="utf-8"))])
    return nbformat.read(path, as_version=4)


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".py":
        path.write_text("\n\n".join(c.source for c in nb.cells if c.cell_type == "code") + "\n", encoding="utf-8")
    else:
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"c{i:03d}"  # copied cells keep their ids: make them unique again
        path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    return path


def _code(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def _defined_names(nb: nbformat.NotebookNode) -> list[str]:
    """Names the student defined (assigned, def'd, parameters, loop variables), not imported ones."""
    defined: dict[str, None] = {}
    imported: set[str] = set()
    for cell in _code(nb):
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.setdefault(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defined.setdefault(node.name)
            elif isinstance(node, ast.arg):
                defined.setdefault(node.arg)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                imported.update((a.asname or a.name).split(".")[0] for a in node.names)
    return [n for n in defined if n not in imported and not hasattr(builtins, n) and n != "_"]


def _edit_tokens(source: str, edit) -> str:
    """Apply `edit(token, previous_token) -> str | None` (None: keep) by position; source unchanged if it
    does not tokenize."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return source
    offsets = [0]
    for line in source.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    edits, prev = [], None
    for tok in tokens:
        new = edit(tok, prev)
        if new is not None:
            edits.append((offsets[tok.start[0] - 1] + tok.start[1], offsets[tok.end[0] - 1] + tok.end[1], new))
        if tok.type not in (tokenize.NL, tokenize.COMMENT):
            prev = tok
    for start, end, new in sorted(edits, reverse=True):
        source = source[:start] + new + source[end:]
    return source


def rename(nb: nbformat.NotebookNode, salt: int = 0) -> nbformat.NotebookNode:
    """Every name the student defined gets another one, consistently across cells (`salt` varies them)."""
    nb = copy.deepcopy(nb)
    names = {n: f"{_NEW_NAMES[(i + salt) % len(_NEW_NAMES)]}_{i + salt}" for i, n in enumerate(_defined_names(nb))}
    in_braces = re.compile(r"\{[^{}]*\}")

    def edit(tok, prev):
        if tok.type == tokenize.NAME and tok.string in names and not (prev and prev.string == "."):
            return names[tok.string]
        if tok.type == tokenize.STRING and re.match(r"(?i)[rb]?f", tok.string):
            return in_braces.sub(lambda m: re.sub(r"\b\w+\b", lambda w: names.get(w.group(), w.group()), m.group()),
                                 tok.string)
        return None

    for cell in _code(nb):
        cell.source = _edit_tokens(cell.source, edit)
    return nb


def recomment(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Comments dropped, docstrings reworded, a new comment on top of every code cell."""
    nb = copy.deepcopy(nb)

    def edit(tok, prev):
        if tok.type == tokenize.COMMENT:
            return ""
        if tok.type == tokenize.STRING and tok.string.startswith(('"""', "'''")):
            return '"""Función auxiliar."""'
        return None

    for i, cell in enumerate(_code(nb)):
        cell.source = f"# Paso {i + 1}\n" + _edit_tokens(cell.source, edit)
    return nb


def sections(nb: nbformat.NotebookNode) -> dict[int, tuple[int, int]]:
    """Exercise number -> [first, end) cell range, from the "## N." headings."""
    starts = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and (m := re.match(r"\s*##\s*(\d)\b", cell.source)):
            starts.append((int(m.group(1)), i))
    bounds = {}
    for j, (number, start) in enumerate(starts):
        bounds[number] = (start, starts[j + 1][1] if j + 1 < len(starts) else len(nb.cells))
    return bounds


def reorder(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Exercises 2 and 3 swapped, and the code cells inside exercise 3 in reverse order."""
    nb = copy.deepcopy(nb)
    bounds = sections(nb)
    if 2 in bounds and 3 in bounds and bounds[2][1] == bounds[3][0]:
        (s2, e2), (s3, e3) = bounds[2], bounds[3]
        nb.cells[s2:e3] = nb.cells[s3:e3] + nb.cells[s2:e2]
        bounds = sections(nb)
    if 3 in bounds:
        start, end = bounds[3]
        positions = [i for i in range(start, end) if nb.cells[i].cell_type == "code"]
        moved = [nb.cells[i] for i in reversed(positions)]
        for i, cell in zip(positions, moved):
            nb.cells[i] = cell
    return nb


def without_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    for cell in _code(nb):
        cell.outputs, cell.execution_count = [], None
    return nb


def copy_exercise(target: nbformat.NotebookNode, source: nbformat.NotebookNode, number: int) -> nbformat.NotebookNode:
    """`target` with its exercise `number` replaced by `source`'s (heading and analysis included)."""
    target = copy.deepcopy(target)
    (ts, te), (ss, se) = sections(target)[number], sections(source)[number]
    target.cells[ts:te] = copy.deepcopy(source.cells[ss:se])
    return target


def transplant_outputs(target: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """`target`'s code with `source`'s saved outputs, code cell by code cell (results not run, pasted)."""
    target = copy.deepcopy(target)
    for cell, other in zip(_code(target), _code(source)):
        cell.outputs, cell.execution_count = copy.deepcopy(other.outputs), other.execution_count
    return target


def disguise(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return without_outputs(reorder(recomment(rename(nb))))


_KERAS3_NOTEBOOKS = ["correct_full", "uses_test_as_validation", "refits_same_model", "no_saved_outputs",
                     "uniform_labelled_as_normal", "prose_in_code_cell", "missing_import", "tests_on_test_each_time"]


def build_batch(out: Path) -> tuple[set[frozenset[str]], dict[str, set[str]]]:
    """Write the test batch to `out`: every sample, the honest solutions, and disguised copies.

    Returns (copies, works): the pairs that must be flagged, and per hand-in the works whose code or
    outputs it contains. Two hand-ins with no work in common are an honest pair and must not be
    flagged. The Keras 3 samples are one work: one author wrote them from one script (the notebooks
    differ by one edit each and are copies of each other; single_script and one_file_per_exercise
    reuse its crear_modelo() and final network verbatim, so they are related to them but not copies).
    """
    out.mkdir(parents=True, exist_ok=True)
    works: dict[str, set[str]] = {}
    for path in sorted(SAMPLES.iterdir()):
        if path.is_dir():
            for f in path.iterdir():
                write(read_notebook(f), out / path.name / f.name)
        elif path.suffix in (".ipynb", ".py"):
            write(read_notebook(path), out / path.name)
        else:
            continue
        works[path.stem] = {"wrong" if path.stem == "wrong_assignment" else
                            "legacy" if path.stem == "legacy_keras2" else "keras3"}
    originals = {name: notebook(cells) for name, cells in HONEST.items()}
    for name, nb in originals.items():
        write(nb, out / f"{name}.ipynb")
        works[name] = {name}
    originals["correct_full"] = read_notebook(SAMPLES / "correct_full.ipynb")
    originals["legacy_keras2"] = read_notebook(SAMPLES / "legacy_keras2.ipynb")
    copies = {frozenset((a, b)) for a in _KERAS3_NOTEBOOKS for b in _KERAS3_NOTEBOOKS if a != b}
    for name, nb in originals.items():
        group = [name]
        for how, fn in [("renombrada", rename), ("comentada", recomment), ("reordenada", reorder),
                        ("disfrazada", disguise)]:
            copy_name = f"copia_{how}_{name}"
            write(without_outputs(fn(nb)), out / f"{copy_name}.ipynb")
            works[copy_name] = set(works[name])
            group.append(copy_name)
        copies |= {frozenset((a, b)) for a in group for b in group if a != b}
    write(recomment(rename(read_notebook(SAMPLES / "single_script.py"))), out / "copia_disfrazada_single_script.py")
    works["copia_disfrazada_single_script"] = {"keras3"}
    copies.add(frozenset(("single_script", "copia_disfrazada_single_script")))
    # One exercise copied, the rest the student's own: B takes A's ex. 2 (renamed), C takes D's ex. 3.
    write(copy_exercise(originals["estilo_b"], rename(originals["estilo_a"]), 2), out / "ej2_de_a_en_b.ipynb")
    write(copy_exercise(originals["estilo_c"], originals["estilo_d"], 3), out / "ej3_de_d_en_c.ipynb")
    works["ej2_de_a_en_b"], works["ej3_de_d_en_c"] = {"estilo_a", "estilo_b"}, {"estilo_c", "estilo_d"}
    copies |= {frozenset(("ej2_de_a_en_b", "estilo_a")), frozenset(("ej2_de_a_en_b", "estilo_b")),
               frozenset(("ej3_de_d_en_c", "estilo_d")), frozenset(("ej3_de_d_en_c", "estilo_c"))}
    # Someone else's results pasted under one's own code: the same run, whatever the code.
    write(transplant_outputs(originals["estilo_d"], originals["correct_full"]), out / "salidas_de_correct_full.ipynb")
    works["salidas_de_correct_full"] = {"estilo_d", "keras3"}
    copies |= {frozenset(("salidas_de_correct_full", "correct_full")), frozenset(("salidas_de_correct_full", "estilo_d"))}
    return copies, works


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    must_flag, works = build_batch(Path(sys.argv[1]))
    print(f"wrote {len(works)} hand-ins to {sys.argv[1]}: {len(must_flag)} pairs must be flagged")
