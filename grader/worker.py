"""`python -m grader.worker JOB.json`: grade one hand-in in this process (see grader.batch)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grader.cli import quiet_tensorflow
from grader.pipeline import GradeOptions, grade_submission
from grader.budget import Budget
from grader.capture.runner import Limits
from grader.submissions import load_submission


def options_from_dict(d: dict) -> GradeOptions:
    return GradeOptions(
        out_dir=Path(d["out_dir"]),
        budget=Budget(**d["budget"]),
        limits=Limits(**d.get("limits", {})),
        rubric_path=Path(d["rubric_path"]) if d.get("rubric_path") else None,
        data_dir=Path(d["data_dir"]) if d.get("data_dir") else None,
        cache_dir=Path(d["cache_dir"]) if d.get("cache_dir") else None,
        seed=d["seed"],
        pdf=d["pdf"],
    )


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when the batch process dies (even by SIGKILL)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list[str]) -> int:
    _die_with_parent()
    quiet_tensorflow()
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    sub = load_submission(Path(job["submission"]), student=job["student"])
    result = grade_submission(sub, options_from_dict(job["options"]))
    Path(job["result"]).write_text(json.dumps(result.to_dict(), ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
