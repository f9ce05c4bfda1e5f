"""grade_submission() as a whole: determinism across fresh caches, and the cache making re-grades free."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grader.load import load_submission
from grader.options import GradeOptions
from grader.pipeline import grade_submission
from tests.builders import tiny_notebook

pytestmark = [pytest.mark.kernel]

VOLATILE = {"wall_s", "cached", "timings", "cache_key_path"}


def stable(value):
    """The result without what legitimately differs between two runs (timings, cache hits)."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def test_same_hand_in_graded_twice_gives_the_same_result(tmp_path: Path):
    nb = tmp_path / "alumna.ipynb"
    nbformat.write(tiny_notebook(20), nb)
    sub = load_submission(nb)
    first = grade_submission(sub, GradeOptions(out_dir=tmp_path / "a", pdf=False))
    second = grade_submission(sub, GradeOptions(out_dir=tmp_path / "b", pdf=False))
    assert not any(r.cached for r in first.runs + second.runs), "each run had its own empty cache"
    assert stable(first.to_dict()) == stable(second.to_dict())
    assert first.runs[0].history["val_accuracy"], "the retrain produced a real history"

    # A re-grade with a warm cache trains nothing and gives the same numbers.
    third = grade_submission(sub, GradeOptions(out_dir=tmp_path / "a", pdf=False))
    assert all(r.cached for r in third.runs)
    assert stable(third.to_dict()) == stable(first.to_dict())


def test_capture_problems_reach_the_student_in_spanish_and_the_instructor_in_detail():
    from grader.capture.trace import Trace
    from grader.load import Submission
    from grader.pipeline import _errors
    from grader.rules import load_rubric

    texts = load_rubric().messages
    trace = Trace(student="a", status="timeout", messages=["cell 3 interrupted after 120 s"])
    (error,) = _errors(Submission("a", Path("a.ipynb"), "ipynb"), trace, texts)
    assert error["message"] == texts["capture_timeout"] and "tiempo límite" in error["message"]
    assert error["detail"] == "cell 3 interrupted after 120 s"
    for status in ("memory", "kernel_died"):
        (error,) = _errors(Submission("a", Path("a.ipynb"), "ipynb"), Trace(student="a", status=status), texts)
        assert error["message"] == texts[f"capture_{status}"]


def test_cells_the_grader_stopped_are_explained_in_spanish() -> None:
    from grader.capture.trace import CellError, Trace
    from grader.load import Submission
    from grader.pipeline import _errors
    from grader.rules import load_rubric

    trace = Trace(student="s", status="memory", errors=[
        CellError(cell=3, ename="Timeout", evalue="cell time limit of 30 s exceeded", limit="cell_timeout",
                  limit_value=30),
        CellError(cell=5, ename="Timeout", evalue="total time limit of 900 s exceeded", limit="total_timeout",
                  limit_value=900),
        CellError(cell=6, ename="MemoryLimit", evalue="kernel killed: memory use 3126 MB over the limit of 3072 MB",
                  limit="memory", limit_value=3072),
        CellError(cell=7, ename="ZeroDivisionError", evalue="division by zero", line=2),
    ])
    errors = _errors(Submission(student="s", path=Path("s.ipynb"), kind="ipynb"), trace, load_rubric().messages)
    cells = {e["cell"]: e for e in errors if e["stage"] == "cell"}
    assert "límite de 30 s por celda" in cells[3]["message"]
    assert cells[3]["detail"] == "cell time limit of 30 s exceeded"  # the instructor keeps the precise text
    assert "tiempo total" in cells[5]["message"] and "900 s" in cells[5]["message"]
    assert "memoria" in cells[6]["message"] and "3072 MB" in cells[6]["message"]
    assert cells[7]["message"] == "division by zero" and "detail" not in cells[7]  # the student's own error
    capture = next(e for e in errors if e["stage"] == "capture")
    assert capture["code"] == "memory" and "memoria" in capture["message"]
