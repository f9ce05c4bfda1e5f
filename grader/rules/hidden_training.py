"""Training outside `fit` judged like an open fit: `train_on_batch` loops and GradientTape loops
(`optimizer.apply_gradients` / `minimize`), from the probe's TrainStepRecords and from the source
(grader.source.train_steps).

Hiding a training must never cost fewer points than doing it openly, so:
- no_test_tuning: steps whose batches hold test rows (recorded), or whose batch / loop data names
  the test set (source), are `fail_test_in_training`, like `fit(x_test, ...)`; a `test_on_batch` /
  `evaluate` on the test set inside the training loop is `fail_test_as_validation`, like
  `fit(..., validation_data=(x_test, y_test))`.
- split_20: a step training is a training without `validation_split`; with no validation measured
  in its loop it is `fail_no_validation`, like `fit(x, y)`; validating on test fails as above;
  another validation is accepted when the hand-in splits 20% of x_train, else unverified.
"""

from __future__ import annotations

from grader.capture.trace import TrainStepRecord
from grader.results import Evidence
from grader.rules.attribution import touches_test
from grader.rules.base import RuleContext, evidence_at, fact_evidence, mentions_test, where
from grader.rules.integrity import TRAINING_KINDS, step_facts


def step_records(ctx: RuleContext) -> list[TrainStepRecord]:
    """Recorded train steps (not measurements) that no static fact of the same cell describes."""
    cells = {f.get("cell") for f in step_facts(ctx)}
    return [s for s in ctx.trace.train_steps if s.kind in TRAINING_KINDS and s.location.cell not in cells]


def trains_by_steps(ctx: RuleContext) -> bool:
    return bool(step_facts(ctx) or [s for s in ctx.trace.train_steps if s.kind in TRAINING_KINDS])


def tuning_problem(ctx: RuleContext) -> tuple[str, dict, list[Evidence]] | None:
    """no_test_tuning's finding for step trainings, worst first (training on test, then validating)."""
    for step in ctx.trace.train_steps:
        if step.kind in TRAINING_KINDS and any(touches_test(r) for r in (*step.x, step.source)):
            rows = _test_rows(step)
            return ("fail_test_in_training", {"where": where(ctx, step.location.cell, step.location.line),
                                              "value": rows}, [_record_evidence(ctx, step)])
    facts = step_facts(ctx)
    for fact in facts:
        if mentions_test(fact.get("x")) or mentions_test(fact.get("data")):
            shown = fact.get("x") if mentions_test(fact.get("x")) else fact.get("data")
            return ("fail_test_in_training", {"where": where(ctx, fact["cell"], fact["line"]), "value": shown},
                    [fact_evidence(ctx, fact, kind=fact["kind"])])
    for fact in facts:
        if mentions_test(fact.get("validation")):
            return ("fail_test_as_validation", {"where": where(ctx, fact["cell"], fact["line"]),
                                                "value": fact["kind"]}, [fact_evidence(ctx, fact, kind=fact["kind"])])
    return None


def split_problems(ctx: RuleContext, accepted_split: bool) -> list[tuple]:
    """split_20's problems of step trainings: (key, where, value, evidence) like Split20's own.
    `accepted_split`: the hand-in slices 20% of x_train for validation somewhere."""
    problems = []
    for fact in step_facts(ctx):
        place, validation = where(ctx, fact["cell"], fact["line"]), fact.get("validation")
        evidence = fact_evidence(ctx, fact, kind=fact["kind"])
        if mentions_test(validation):
            problems.append(("fail_test_as_validation", place, validation, evidence))
        elif validation and not accepted_split:
            problems.append(("warn_unverified", place, f"{fact['kind']}: {validation}", evidence))
        elif not validation:
            problems.append(("fail_no_validation", place, "", evidence))
    for step in step_records(ctx):
        place = where(ctx, step.location.cell, step.location.line)
        problems.append(("fail_no_validation", place, "", _record_evidence(ctx, step)))
    return problems


def step_count(ctx: RuleContext) -> int:
    return len(step_facts(ctx)) + len(step_records(ctx))


def _test_rows(step: TrainStepRecord) -> int:
    """Test rows it trained on: the largest batch's test rows per step (the last step's own when it
    was kept: steps 1, 2, 4, ... are), at most the rows of the test array the batches were sliced from."""
    kept = [r.rows.get("test", 0) if r.rows else 0 for r in step.x]
    batch = max(kept, default=0)
    rows = batch * step.steps
    if kept and step.steps == 2 ** (len(kept) - 1):  # the last batch kept is the last step's
        rows = batch * (step.steps - 1) + kept[-1]
    source = step.source.rows.get("test", 0) if step.source is not None and step.source.rows else None
    return min(rows, source) if source and rows else (source or rows)


def _record_evidence(ctx: RuleContext, step: TrainStepRecord) -> Evidence:
    return evidence_at(ctx, step.location.cell, step.location.line, kind=step.kind, steps=step.steps,
                       model_id=step.model_id)
