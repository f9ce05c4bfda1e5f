"""`python -m grader.worker JOB.json`: grade one hand-in in this process (see grader.batch)."""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
from pathlib import Path

from grader.options import ENV_BATCH_PID


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when the batch process dies (even by SIGKILL). Done before
    the heavy imports below: a batch killed during those seconds must not leave an orphan worker
    grading beside the next run. If the batch is already gone, leave at once."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    expected = os.environ.get(ENV_BATCH_PID)
    if expected and os.getppid() != int(expected):
        os._exit(1)


if __name__ == "__main__":
    _die_with_parent()

from grader.codec import from_data  # noqa: E402
from grader.load import load_submission  # noqa: E402
from grader.options import GradeOptions, quiet_tensorflow  # noqa: E402
from grader.pipeline import grade_submission  # noqa: E402
from grader.results import StudentRecord  # noqa: E402


def main(argv: list[str]) -> int:
    quiet_tensorflow()
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    opts = from_data(GradeOptions, job["options"])
    # A soft limit: the kernel's launcher and the retrain child set their own (lower or higher).
    hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
    memory = opts.budget.memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (memory if hard == resource.RLIM_INFINITY else min(memory, hard), hard))
    sub = load_submission(Path(job["submission"]), student=job["student"],
                          workdir=Path(job["workdir"]) if job.get("workdir") else None)
    if job.get("record") is not None:
        sub.record = from_data(StudentRecord, job["record"])
    sub.notes = job.get("notes", sub.notes)
    result = grade_submission(sub, opts)
    Path(job["result"]).write_text(json.dumps(result.to_dict(), ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
