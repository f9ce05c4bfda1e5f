"""Which runs the retrain of a trace is made of: one per fitted model object, in the order of its
first fit. Free of Keras, so that the process that waits for a retrain child (grader.retrain.child)
knows every run it must report, even those the child never finished."""

from __future__ import annotations

from grader.capture.trace import FitRecord, Trace
from grader.results import RunResult


def plan_runs(trace: Trace, final_model_id: int | None, seed: int) -> tuple[list[RunResult], dict[int, list[FitRecord]]]:
    """The runs (not yet trained) and the fits of each model id, consecutive fits in order."""
    groups: dict[int, list[FitRecord]] = {}
    for fit in sorted(trace.fits, key=lambda f: f.index):
        groups.setdefault(fit.model_id, []).append(fit)
    runs = [RunResult(run_id=f"m{model_id}", model_id=model_id, fit_indices=[f.index for f in fits],
                      is_final=model_id == final_model_id, seed=seed) for model_id, fits in groups.items()]
    return runs, groups
