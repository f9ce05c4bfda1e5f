"""grade_submission() as a whole: determinism across fresh caches, and the cache making re-grades free."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grader.pipeline import GradeOptions, grade_submission
from grader.submissions import load_submission
from tests.test_batch import tiny_notebook

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
    from grader.pipeline import _errors
    from grader.rubric import load_rubric
    from grader.submissions import Submission

    texts = load_rubric().messages
    trace = Trace(student="a", status="timeout", messages=["timing: cell 3 1.2 s", "cell 3 interrupted after 120 s"])
    (error,) = _errors(Submission("a", Path("a.ipynb"), "ipynb"), trace, texts)
    assert error["message"] == texts["capture_timeout"] and "tiempo límite" in error["message"]
    assert error["detail"] == "cell 3 interrupted after 120 s"
    for status in ("memory", "kernel_died"):
        (error,) = _errors(Submission("a", Path("a.ipynb"), "ipynb"), Trace(student="a", status=status), texts)
        assert error["message"] == texts[f"capture_{status}"]
