"""The committed hostile hand-ins are exactly what make_hostile.py writes (fast; runs by default)."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat

from tests.adversarial import make_hostile as hostile


def test_committed_handins_match_the_generator(tmp_path: Path) -> None:
    written = hostile.write_all(tmp_path)
    assert {p.name for p in written} == {p.name for p in hostile.HERE.iterdir()
                                        if p.suffix in (".ipynb", ".zip")}
    for path in written:
        assert path.read_bytes() == (hostile.HERE / path.name).read_bytes(), (
            f"{path.name} is stale: run `python tests/adversarial/make_hostile.py`")


def test_every_case_has_a_file_and_its_code_parses() -> None:
    for name in hostile.CASES:
        if name in ("loader_huge", "iso_huge_code_cell"):  # written by the test, not committed
            continue
        matches = list(hostile.HERE.glob(f"{name}.*"))
        assert len(matches) == 1, name
        if name.startswith("loader_"):
            continue
        nb = nbformat.read(matches[0], as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                ast.parse(cell.source)


def test_huge_notebook_is_over_the_load_limit(tmp_path: Path) -> None:
    from grader.load import MAX_FILE_BYTES

    hostile.huge_notebook(tmp_path / "huge.ipynb")
    assert (tmp_path / "huge.ipynb").stat().st_size > MAX_FILE_BYTES
