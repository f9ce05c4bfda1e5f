"""The rule registry (filled by explicit `register(...)` lines) and `grade()`, which runs every rule
and turns verdicts into exercise scores and a total."""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from grader.capture.trace import Trace
from grader.errors import ConfigError
from grader.load import Submission
from grader.results import EXERCISES, ExerciseScore, RunResult, Verdict
from grader.rubric import Rubric, read_rubric
from grader.rules.analysis import AnalysisWritten
from grader.rules.attribution import Attribution
from grader.rules.base import SKIP_REASONS, Rule, RuleContext
from grader.rules.exercises import (
    Ex1Activations,
    Ex2Initializers,
    Ex3Optimizers,
    Ex4Regularization,
    Ex42TestEvaluation,
)
from grader.rules.hygiene import CellsRun, CodeParses, ExecutionOrder, OutputsSaved
from grader.rules.integrity import FitsRecorded
from grader.rules.performance import FinalValAccuracy, ReportedVsReproduced
from grader.rules.protocol import NewModelPerFit, NoTestTuning, Split20
from grader.rules.suspicious import SuspiciousCode

RULES: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    if rule.id in RULES:
        raise ValueError(f"rule {rule.id!r} registered twice")
    RULES[rule.id] = rule
    return rule


# Order here is the order of the verdicts in reports.
register(Split20())
register(NewModelPerFit())
register(NoTestTuning())
register(FitsRecorded())
register(Ex1Activations())
register(Ex2Initializers())
register(Ex3Optimizers())
register(Ex4Regularization())
register(FinalValAccuracy())
register(Ex42TestEvaluation())
register(ReportedVsReproduced())
register(AnalysisWritten())
register(OutputsSaved())
register(CellsRun())
register(CodeParses())
register(ExecutionOrder())
register(SuspiciousCode())


def _type_ok(value: Any, tag: str) -> bool:
    if tag == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tag == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if tag == "str":
        return isinstance(value, str)
    if tag == "list[str]":
        return isinstance(value, Sequence) and not isinstance(value, str) and all(isinstance(v, str) for v in value)
    if tag.startswith("dict[str,"):
        inner = tag[len("dict[str,"):-1]
        return isinstance(value, Mapping) and all(isinstance(k, str) and _type_ok(v, inner) for k, v in value.items())
    raise ValueError(f"unknown type tag {tag!r}")


_TAG_TEXT = {"number": "a number", "int": "an integer", "str": "a string", "list[str]": "a list of strings",
             "dict[str,str]": "a mapping of strings", "dict[str,list[str]]": "a mapping of string lists"}


def load_rubric(path: str | Path | None = None) -> Rubric:
    """Read a rubric file (default: the shipped one) and check it against the registered rules."""
    rubric = read_rubric(path)
    validate_rubric(rubric)
    return rubric


def validate_rubric(rubric: Rubric) -> None:
    """Every registered rule is in the rubric with the parameters and message keys it uses."""
    for reason in SKIP_REASONS:
        if f"skip_{reason}" not in rubric.messages:
            raise ConfigError(f"missing message 'skip_{reason}'", file=rubric.path, key="messages")
    for rule_id in rubric.rules:
        if rule_id not in RULES:
            raise ConfigError(f"unknown rule (known: {', '.join(RULES)})", file=rubric.path, key=f"rules.{rule_id}")
    for rule_id, rule in RULES.items():
        key = f"rules.{rule_id}"
        spec = rubric.rules.get(rule_id)
        if spec is None:
            raise ConfigError("missing rule", file=rubric.path, key=key)
        for name, tag in rule.params.items():
            if name not in spec.params:
                raise ConfigError(f"missing key {name!r}", file=rubric.path, key=f"{key}.params")
            if not _type_ok(spec.params[name], tag):
                raise ConfigError(f"expected {_TAG_TEXT.get(tag, tag)}", file=rubric.path, key=f"{key}.params.{name}")
        for name in spec.params:
            if name not in rule.params:
                raise ConfigError("unknown parameter", file=rubric.path, key=f"{key}.params.{name}")
        for msg in rule.messages:
            if msg not in spec.messages:
                raise ConfigError(f"missing message {msg!r}", file=rubric.path, key=f"{key}.messages")
        # Values the type tags cannot judge (a regular expression that does not compile).
        check_params = getattr(rule, "check_params", None)
        problem = check_params(spec.params) if check_params else None
        if problem:
            raise ConfigError(problem[1], file=rubric.path, key=f"{key}.params.{problem[0]}")


def grade(sub: Submission, trace: Trace, runs: list[RunResult], rubric: Rubric,
          attribution: Attribution) -> tuple[list[Verdict], list[ExerciseScore], float, float]:
    """Run every rule; return (verdicts, exercise scores incl. "general" deductions, total, maximum)."""
    ctx = RuleContext(submission=sub, trace=trace, runs=runs, attribution=attribution, rubric=rubric)
    verdicts = [_check(rule, ctx) for rule in RULES.values()]
    return (verdicts, *score(verdicts, rubric))


def score(verdicts: list[Verdict], rubric: Rubric) -> tuple[list[ExerciseScore], float, float]:
    """Exercise scores, total and maximum from verdicts; the one scorer (grading and instructor overrides)."""
    scores = []
    for ex in rubric.exercises:
        earned = sum(v.points for v in verdicts if v.exercise == ex.id)
        if ex.id in EXERCISES:
            earned = min(max(earned, 0.0), ex.points)
        scores.append(ExerciseScore(exercise=ex.id, title=ex.title, points=round(earned, 2), max_points=ex.points))
    maximum = rubric.max_score
    total = round(min(max(sum(s.points for s in scores), 0.0), maximum), 2)
    return scores, total, maximum


def _check(rule: Rule, ctx: RuleContext) -> Verdict:
    """A rule that crashes becomes a skipped verdict in this hand-in's report; the batch goes on."""
    try:
        verdict = rule.check(ctx)
        if verdict.status == "fail" and rule.cut_by_check(ctx):
            return rule.skip(ctx, "check_time")  # never a fail because of the check's time bound
        return verdict
    except Exception as exc:
        spec = ctx.rubric.rules[rule.id]
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return Verdict(id=rule.id, exercise=spec.exercise, status="skip", points=0.0, max_points=spec.points,
                       message=f"El corrector no pudo aplicar esta regla (error interno: {last}); revisión manual.",
                       severity=spec.severity, title=spec.title, key="skip_internal_error")
