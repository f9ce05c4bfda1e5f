"""Write the sample hand-ins in submissions/ (one per expected outcome).

    python scripts/make_samples.py              # write every sample
    python scripts/make_samples.py --execute    # also run the notebooks that carry real outputs
    python scripts/make_samples.py --execute --only correct_full

The samples imitate real student work for "Trabajo 2" (Fashion-MNIST): Spanish prose, the course
template's structure and plot helpers, and one typical mistake each (named by the file name).
Notebooks listed in EXECUTED get their outputs from a real nbclient run with the real Keras; without
--execute an existing executed notebook is kept when its code cells are unchanged (markdown edits are
applied in place), and otherwise it is rewritten WITHOUT outputs and reported as stale. The 2019 notebook and the wrong-assignment notebook
cannot run here (Keras 2 API, CIFAR-10 offline), so scripts/sample_handwritten.py writes their
outputs by hand: plausible numbers (close to real runs of the same configs), plots drawn with matplotlib.

Execution needs Fashion-MNIST in Keras' cache (~/.keras/datasets/fashion-mnist/, see `make data`).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The sample contents live beside this script, one module per kind of hand-in.
from sample_content import notebook_variants
from sample_handwritten import legacy_keras2_notebook, wrong_assignment_notebook
from sample_scripts import one_file_per_exercise_files, single_script_source

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "submissions"

# Samples whose saved outputs must come from a real run (see module docstring).
EXECUTED = (
    "correct_full",
    "uses_test_as_validation",
    "refits_same_model",
    "uniform_labelled_as_normal",
    "prose_in_code_cell",
    "missing_import",
    "tests_on_test_each_time",
)
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
CELL_TIMEOUT_S = 1800


def build_notebook(name: str, cells: list[tuple[str, str]], metadata: dict | None = None) -> nbformat.NotebookNode:
    """Turn (kind, source) pairs into an nbformat 4.5 notebook with stable cell ids."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata.update(metadata or {})
    for index, (kind, source) in enumerate(cells):
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        # Stable ids keep regenerated files byte-identical when nothing changed.
        cell["id"] = hashlib.sha1(f"{name}:{index}".encode()).hexdigest()[:8]
        nb.cells.append(cell)
    return nb


def sources_of(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def code_of(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """Cell kinds in order, with the source of code cells only."""
    return [(c.cell_type, c.source if c.cell_type == "code" else "") for c in nb.cells]


def execute(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """Run the notebook top to bottom in a real kernel, going on past errors like a student
    who runs cell after cell (so a broken cell keeps its traceback and later cells their outputs)."""
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix=f"sample-{name}-") as work:
        client = NotebookClient(
            nb,
            timeout=CELL_TIMEOUT_S,
            kernel_name="python3",
            allow_errors=True,
            record_timing=False,
            coalesce_streams=True,  # one stream output per cell, as Jupyter saves them
            resources={"metadata": {"path": work}},
            on_cell_executed=lambda cell, cell_index, **_: print(
                f"    cell {cell_index + 1}/{len(nb.cells)} done", flush=True),
        )
        started = time.monotonic()
        client.execute()
        print(f"  executed {name} in {time.monotonic() - started:.0f}s", flush=True)
    return nb


def write_notebook(path: Path, nb: nbformat.NotebookNode) -> None:
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")


def write_executed_sample(name: str, nb: nbformat.NotebookNode, run: bool) -> None:
    path = OUT_DIR / f"{name}.ipynb"
    if run:
        write_notebook(path, execute(nb, name))
        return
    if path.exists():
        old = nbformat.read(path, as_version=4)
        if sources_of(old) == sources_of(nb):
            print(f"  kept {path.name} (sources unchanged, real outputs kept)")
            return
        if code_of(old) == code_of(nb):
            # Only prose changed: the saved outputs are still those of this code, keep them.
            for old_cell, new_cell in zip(old.cells, nb.cells):
                old_cell.source = new_cell.source
            write_notebook(path, old)
            print(f"  updated markdown of {path.name} (code unchanged, real outputs kept)")
            return
    write_notebook(path, nb)
    print(f"  WROTE {path.name} WITHOUT outputs: stale, run with --execute --only {name}")


def clear_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="run the notebooks that need real outputs")
    parser.add_argument("--only", nargs="*", default=None, help="sample names to (re)write")
    args = parser.parse_args(argv)
    wanted = set(args.only) if args.only else None
    OUT_DIR.mkdir(exist_ok=True)

    def selected(name: str) -> bool:
        return wanted is None or name in wanted

    variants = notebook_variants()
    for name in EXECUTED:
        if selected(name):
            print(f"{name}:")
            write_executed_sample(name, build_notebook(name, variants[name]), args.execute)

    if selected("no_saved_outputs"):
        nb = clear_outputs(build_notebook("no_saved_outputs", variants["no_saved_outputs"]))
        write_notebook(OUT_DIR / "no_saved_outputs.ipynb", nb)
    if selected("legacy_keras2"):
        write_notebook(OUT_DIR / "legacy_keras2.ipynb", legacy_keras2_notebook())
    if selected("wrong_assignment"):
        write_notebook(OUT_DIR / "wrong_assignment.ipynb", wrong_assignment_notebook())
    if selected("single_script"):
        (OUT_DIR / "single_script.py").write_text(single_script_source(), encoding="utf-8")
    if selected("one_file_per_exercise"):
        folder = OUT_DIR / "one_file_per_exercise"
        folder.mkdir(exist_ok=True)
        for file_name, text in one_file_per_exercise_files().items():
            (folder / file_name).write_text(text, encoding="utf-8")
    print("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
