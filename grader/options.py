"""What several layers share about one grading run: its options, and the environment names.

Kept free of TensorFlow and of the other grader modules, so the CLI, the batch parent and the worker
can build and pass options without importing a pipeline stage (and without import cycles).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

# The batch parent's pid, given to each worker: a worker whose parent is already gone exits at once.
ENV_BATCH_PID = "GRADER_BATCH_PID"
# The worker's pid, given to its retrain child (grader.retrain.child): an orphaned child exits at once.
ENV_RETRAIN_PARENT_PID = "GRADER_RETRAIN_PARENT_PID"


@dataclass(frozen=True)
class Budget:
    """How much training the trusted retrain may do for one hand-in."""

    name: str = "full"  # "full": the student's epochs; "quick": non-final runs capped
    quick_epochs: int = 2
    max_epochs: int = 100  # hard cap whatever the student asked
    time_budget_s: float = 1800  # per hand-in; when exceeded, remaining runs get status "budget"
    # The trusted side's memory (RLIMIT_DATA): the worker's soft limit and the retrain child's limit.
    memory_mb: int = 6144
    check_s: float = 180  # quick: the WHOLE self-check (capture, retrain, rules, report); 0 = no bound
    report_reserve_s: float = 15  # quick: kept for the rules and the report after the retrain

    def retrain_seconds(self, elapsed_s: float) -> float:
        """What the retrain may use, `elapsed_s` into the hand-in: under the quick budget what is left
        of `check_s` once capture is done and the report's share is set aside (the final model, trained
        first, gets it all; comparison models what it leaves)."""
        if self.name != "quick" or self.check_s <= 0:
            return self.time_budget_s
        return max(0.0, min(self.time_budget_s, self.check_s - elapsed_s - self.report_reserve_s))

    def capture_seconds(self) -> float | None:
        """Quick budget: the student's cells stop `check_s` into the hand-in (a notebook slow outside
        `fit` must not hold the check up either); None: only the kernel's own limits apply. The report's
        share is not set aside here: the capture is the protocol verdicts' evidence, worth a few seconds
        over the bound."""
        return self.check_s if self.name == "quick" and self.check_s > 0 else None


@dataclass(frozen=True)
class Limits:
    """The student kernel's limits (grader.capture)."""

    cell_timeout_s: float = 120
    total_timeout_s: float = 900
    memory_mb: int = 6144
    output_bytes: int = 2_000_000  # total stdout/stream/display captured per hand-in; the rest dropped
    array_bytes: int = 1_500_000_000  # total .npy bytes saved per hand-in
    # The work folder (cwd, HOME, TMPDIR) is a tmpfs of this size and number of files: a disk or
    # inode flood stops there with ENOSPC. Its pages are memory, on top of memory_mb.
    disk_mb: int = 1024
    inodes: int = 20_000


@dataclass(frozen=True)
class GradeOptions:
    out_dir: Path
    budget: Budget = field(default_factory=Budget)
    limits: Limits = field(default_factory=Limits)  # the student kernel's time/memory/output limits
    rubric_path: Path | None = None
    data_dir: Path | None = None
    cache_dir: Path | None = None  # retrain cache; default out_dir/.cache
    seed: int = 1234
    pdf: bool = True
    keep_work: bool = False  # keep the captured arrays (large) after grading

    @property
    def retrain_cache(self) -> Path:
        return self.cache_dir or self.out_dir / ".cache"


def quiet_tensorflow() -> None:
    """TensorFlow's C++ start-up banner and retracing warnings are noise for graders' users."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
