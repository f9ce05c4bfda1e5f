"""What the trusted side produces: retrain runs, rule verdicts, and the graded result.

`GradeResult.to_dict()` is the machine-readable result (`grader check --json`), which external
checks rely on: keep the field names stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grader.codec import to_data

# The project's shared vocabulary, said once: verdict statuses, exercise ids, and the groups that carry
# points (the exercises plus "general", the rules that only deduct).
STATUSES = ("pass", "fail", "warn", "skip")
EXERCISES = ("ex1", "ex2", "ex3", "ex4")
GROUPS = (*EXERCISES, "general")


@dataclass
class StudentRecord:
    """Who handed a hand-in in, as the course platform named it (shown in reports and exports).

    `Submission.student` / `GradeResult.student` stay the id used for file names and the gradebook;
    this record is what people read and what platform exports match on.
    """

    display_name: str  # for humans: cleaned of bidirectional and invisible characters
    platform: str = "folder"  # "folder" (a plain folder or ZIP) | "moodle" | "canvas"
    platform_id: str | None = None  # Moodle participant id, Canvas user id
    late: bool = False  # the platform marked the hand-in late (Canvas "LATE")
    source_name: str = ""  # the file or folder name the hand-in came from


@dataclass
class RunResult:
    """One model as the grader retrained it (consecutive fits of one object are one run)."""

    run_id: str  # "m3" (probe model id) -- stable inside one hand-in
    model_id: int
    fit_indices: list[int]  # the FitRecord.index values replayed on this model, in order
    exercise: str | None = None  # "ex1".."ex4" (attribution)
    label: str = ""  # short human label: "ReLU", "sigmoid", "zeros", "Adam", "final" ...
    is_final: bool = False
    status: str = "ok"  # "ok" | "not_reproducible" | "budget" | "error"
    reason: str = ""  # why not ok (English for the log, Spanish text comes from the rubric)
    # What the budget cut (status "budget"): "epochs" = capped at the grader's maximum epochs (deterministic,
    # cached), "time" = the retrain time ran out (not cached); "" = nothing.
    cut: str = ""
    history: dict[str, list[float]] = field(default_factory=dict)  # loss, accuracy, val_loss, val_accuracy
    best_val_accuracy: float | None = None
    last_val_accuracy: float | None = None
    epochs_run: int = 0
    epochs_requested: int = 0  # what the grader planned: the student's epochs after the budget's caps
    epochs_asked: int = 0  # what the student's fit() calls asked for (0: unknown, an older cache entry)
    test_accuracy: float | None = None  # final model only
    # The weights that were tested: their epoch (1-based) and validation accuracy. The best epoch when an
    # EarlyStopping(restore_best_weights=True) restored it, else the last one: the validation-test gap
    # always compares the same weights.
    tested_epoch: int | None = None
    tested_val_accuracy: float | None = None
    restored_best: bool = False
    wall_s: float = 0.0
    cached: bool = False
    seed: int = 0
    cache_key: str = ""
    notes: list[str] = field(default_factory=list)  # English, for the log: ignored callbacks, caps, ...


@dataclass
class Evidence:
    cell: int | None = None  # 0-based cell index (messages show cell + 1)
    line: int | None = None
    excerpt: str = ""  # a few lines of the student's code, verbatim (untrusted!)
    values: dict[str, Any] = field(default_factory=dict)
    where: str = ""  # Spanish, in the hand-in's own terms: "celda 7, línea 3" or "línea 12 de ej1.py"


@dataclass
class Override:
    """The instructor's correction of one verdict: stored in the gradebook, applied after the rules on
    every later grading and re-render (grader.review.overrides)."""

    student: str
    rule: str  # rule id
    status: str  # one of STATUSES
    note: str  # the instructor's words, shown to the student as "Revisado por el profesor: ..."
    points: float | None = None  # None: what the rubric gives for `status`
    created_at: float = 0.0  # time.time() when set
    auto_status: str = ""  # the automatic verdict the instructor saw when correcting it
    auto_points: float | None = None
    auto_message: str = ""
    to_confirm: bool = False  # a re-grade changed the automatic verdict since: the instructor must look again
    auto_status_now: str = ""  # the automatic status of that re-grade (when to_confirm)
    auto_points_now: float | None = None


@dataclass
class ReviewItem:
    """One reason for a human to look at a hand-in (the "Revisar" queue)."""

    kind: str  # "not_reproducible", "source_only", "suspicious", "fits_unrecorded", "reported_mismatch",
    #            "budget", "load_error", "not_trabajo2", "override_to_confirm", "similarity"
    text: str  # Spanish, for the instructor
    href: str  # where the evidence is: "<report>.html#rule-split_20", "similarity.html#pair-3"


@dataclass
class Verdict:
    id: str  # rule id, e.g. "split_20"
    exercise: str  # "ex1".."ex4" or "general"
    status: str  # one of STATUSES
    points: float
    max_points: float
    message: str  # Spanish, for the student
    severity: str = "error"  # "error" | "warning" | "info"
    evidence: list[Evidence] = field(default_factory=list)
    title: str = ""  # the rule's short Spanish name from the rubric
    key: str = ""  # the rubric message key the rule chose ("pass_saved", "fail_test_as_validation", ...)
    override: Override | None = None  # set when the instructor corrected this verdict


@dataclass
class ExerciseScore:
    exercise: str
    title: str
    points: float
    max_points: float


@dataclass
class GradeResult:
    student: str
    score: float
    max_score: float
    rules: list[Verdict] = field(default_factory=list)
    runs: list[RunResult] = field(default_factory=list)
    exercises: list[ExerciseScore] = field(default_factory=list)
    final: dict[str, Any] | None = None  # {val_accuracy, test_accuracy, epochs}
    errors: list[dict[str, Any]] = field(default_factory=list)  # load/capture/cell errors
    meta: dict[str, Any] = field(default_factory=dict)  # seed, versions, budget, timings, rubric
    record: StudentRecord | None = None  # who handed it in (platform name, id, late flag)

    def to_dict(self) -> dict[str, Any]:
        return to_data(self)

    @property
    def failed_errors(self) -> list[Verdict]:
        return [v for v in self.rules if v.status == "fail" and v.severity == "error"]
