"""What every rule shares: the `Rule` protocol, the `RuleContext` it reads, and verdict helpers.

A rule never computes points or writes Spanish itself: it picks a status and a message key, and
passes values; the rubric turns them into points and text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from grader.capture.trace import FitRecord, Trace
from grader.load import Submission
from grader.results import Evidence, RunResult, Verdict
from grader.rubric import Rubric, RuleSpec, render
from grader.rules.attribution import Attribution, Numbering, cell_exercises, numbering_of, touches_test
from grader.rules.places import DEFAULT_TEMPLATE, place
from grader.source.recognize import Recognition, recognize
from grader.source.reported import reported_metrics
from grader.source.selection import find_selections
from grader.source.static import analyze

MAX_EVIDENCE = 5
EXCERPT_LINES = 3
EXECUTION_FAILED = ("timeout", "kernel_died", "memory", "not_run", "check_time")


@dataclass
class RuleContext:
    submission: Submission
    trace: Trace
    runs: list[RunResult]
    attribution: Attribution
    rubric: Rubric
    static: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.static:
            self.static = self.trace.static or analyze(self.submission)

    @cached_property
    def reported(self) -> list[dict[str, Any]]:
        return reported_metrics(self.submission)

    @cached_property
    def execution_incomplete(self) -> bool:
        """Student code did not run to the end: static facts must stand in for the trace."""
        return self.trace.status in EXECUTION_FAILED or bool(self.trace.errors)

    @cached_property
    def cells_cut_by_check(self) -> set[int]:
        """Cells `grader check`'s time bound kept from running (to the end): the stop's cell and those after it."""
        stop = self.trace.check_stop()
        if stop is None or stop.cell is None:
            return set()
        return {c for c in self.cell_exercise if c >= stop.cell}

    @cached_property
    def recognition(self) -> Recognition:
        """Trabajo 2 or not, from text, code, static facts and the rows the probe fingerprinted."""
        return recognize(self.submission, self.static, trained_rows(self.trace), self.rubric.recognition)

    @cached_property
    def looks_like_trabajo2(self) -> bool:
        """Readable and not another assignment by its content (grader.source.recognize decides)."""
        return self.submission.load_error is None and self.recognition.is_trabajo2

    @cached_property
    def test_selections(self) -> list[dict[str, Any]]:
        """Lines of the source that choose or rank models by a test metric (grader.source.selection)."""
        return find_selections(self.submission)

    @cached_property
    def unexecuted_fit_facts(self) -> list[dict[str, Any]]:
        """Fit calls of the source that never ran: in cells that raised, or all of them when nothing
        was trained (no data, missing imports); these are judged from their source."""
        ran = {f.location.cell for f in self.trace.fits}
        failed = {e.cell for e in self.trace.errors}
        return [f for f in self.static.get("fits", [])
                if f["cell"] not in ran and (not self.trace.fits or f["cell"] in failed)]

    @cached_property
    def numbering(self) -> Numbering:
        """How this hand-in names its exercises: titles, the rubric's aliases, the edition's numbers."""
        return numbering_of(self.submission, self.rubric.aliases)

    @cached_property
    def cell_exercise(self) -> dict[int, str | None]:
        """Exercise of every cell: headings, banners and file names; where they say nothing, the
        exercise of the last attributed fit at or above the cell."""
        from_text = cell_exercises(self.submission, self.numbering)
        fit_cells: dict[int, str] = {}
        for fit in self.trace.fits:
            ex = self.attribution.exercise_of_fit(fit.index)
            if ex and fit.location.cell is not None:
                fit_cells.setdefault(fit.location.cell, ex)
        out: dict[int, str | None] = {}
        current: str | None = None
        for cell in self.submission.cells:
            current = fit_cells.get(cell.index, current)
            out[cell.index] = from_text.get(cell.index) or current
        return out

    def fits(self, exercise: str | None = None) -> list[FitRecord]:
        if exercise is None:
            return list(self.trace.fits)
        wanted = set(self.attribution.fits_for(exercise))
        return [f for f in self.trace.fits if f.index in wanted]

    def static_facts(self, kind: str, exercise: str | None = None) -> list[dict[str, Any]]:
        """Static facts of a kind; of one exercise's cells when any cell maps to that exercise."""
        facts = list(self.static.get(kind, []))
        if exercise is None:
            return facts
        mapped = [f for f in facts if self.cell_exercise.get(f.get("cell")) == exercise]
        any_mapped = any(ex == exercise for ex in self.cell_exercise.values())
        return mapped if any_mapped else facts

    def final_run(self) -> RunResult | None:
        final = self.attribution.final_model_id
        for run in self.runs:
            if run.is_final or (final is not None and run.model_id == final):
                return run
        return None

    def final_fit(self) -> FitRecord | None:
        final = self.attribution.final_model_id
        fits = [f for f in self.trace.fits if f.model_id == final]
        return fits[-1] if fits else None

    def test_evals(self, model_id: int | None = None) -> list:
        return [e for e in self.trace.evals if touches_test(e.x) and (model_id is None or e.model_id == model_id)]


class Rule(Protocol):
    id: str
    params: dict[str, str]  # parameter name -> type tag ("number", "int", "list[str]", ...)
    messages: tuple[str, ...]  # message keys the rule uses

    def check(self, ctx: RuleContext) -> Verdict: ...

    def cut_by_check(self, ctx: RuleContext) -> bool: ...

    def skip(self, ctx: RuleContext, reason: str) -> Verdict: ...


class BaseRule:
    """Helpers for rule classes; subclasses set id/params/messages and implement check()."""

    id = ""
    params: dict[str, str] = {}
    messages: tuple[str, ...] = ("pass",)

    def spec(self, ctx: RuleContext) -> RuleSpec:
        return ctx.rubric.rules[self.id]

    def verdict(self, ctx: RuleContext, status: str, key: str | None = None, *, values: dict[str, Any] | None = None,
                evidence: list[Evidence] | None = None, fraction: float | None = None,
                deduct: float | None = None) -> Verdict:
        spec = self.spec(ctx)
        shared = {k: " ".join(v.split()) for k, v in ctx.rubric.messages.items() if k != "where"}
        text = spec.message(key or status, values or {}, shared)
        unique, seen = [], set()
        for ev in evidence or []:
            if (ev.cell, ev.line) not in seen:  # two facts on one line: quote the line once
                seen.add((ev.cell, ev.line))
                unique.append(ev)
        evidence = unique
        return Verdict(id=self.id, exercise=spec.exercise, status=status,
                       points=spec.points_for(status, fraction, deduct), max_points=spec.points, message=text,
                       severity=spec.severity, evidence=evidence or [], title=spec.title, key=key or status)

    def cut_by_check(self, ctx: RuleContext) -> bool:
        """The quick check's bound stopped the notebook before this rule's evidence was all there: a
        fail would be the budget's, not the student's (grade() turns it into a skip). Rules whose fails
        rest on what was seen (test data used for validation, a refit) keep them."""
        return False

    def skip(self, ctx: RuleContext, reason: str) -> Verdict:
        """Skip for one of SKIP_REASONS; the Spanish text is the rubric's `messages.skip_<reason>`."""
        return self.skip_because(ctx, ctx.rubric.messages[f"skip_{reason}"])

    def skip_because(self, ctx: RuleContext, text: str) -> Verdict:
        """Skip with a reason the rule already has as rubric text (its own params)."""
        return self.verdict(ctx, "skip", values={"reason": " ".join(text.split())})

    def not_trabajo2(self, ctx: RuleContext) -> Verdict:
        """Exercise rules on a hand-in that is unreadable or another homework: fail, saying why."""
        error = ctx.submission.load_error
        if error is not None:
            template = ctx.rubric.messages.get("load_error", "{error}")
            text = render(" ".join(template.split()), {"error": error.message})
        else:
            template = " ".join(ctx.rubric.messages.get("not_trabajo2", "").split())
            text = render(template, {"reasons": "; ".join(ctx.recognition.against) or "?"})
        verdict = self.verdict(ctx, "fail")
        verdict.message = text
        verdict.key = "fail_load_error" if error is not None else "fail_not_trabajo2"
        return verdict

    def skip_unless_trabajo2(self, ctx: RuleContext) -> Verdict | None:
        """General rules have nothing to say about an unreadable hand-in or another homework."""
        if ctx.submission.load_error is not None:
            return self.skip(ctx, "unreadable")
        if not ctx.looks_like_trabajo2:
            return self.skip(ctx, "not_trabajo2")
        return None


def trained_rows(trace: Trace) -> list[dict[str, int]]:
    """Row fingerprints of every array the hand-in trained on: its fits and its steps outside fit."""
    refs = [f.x for f in trace.fits] + [r for s in trace.train_steps for r in (*s.x, s.source)]
    return [r.rows for r in refs if r is not None and r.rows]


# Why a rule may have nothing to judge; each has its Spanish text in the rubric's `messages.skip_<reason>`.
SKIP_REASONS = ("unreadable", "not_trabajo2", "not_run", "no_code", "no_code_cells", "empty", "no_fits",
                "nothing_trained", "not_notebook", "no_saved_outputs", "no_execution_counts", "no_final_run",
                "retrain_cut", "no_saved_final", "check_time")


def where(ctx: RuleContext, cell: int | None, line: int | None = None) -> str:
    """'celda 7, línea 3' (1-based), or 'línea 12 de ej1.py' for a .py hand-in."""
    return place(ctx.submission, cell, line, ctx.rubric.messages.get("where", DEFAULT_TEMPLATE))


def excerpt(sub: Submission, cell: int | None, line: int | None, end_line: int | None = None) -> str:
    """Verbatim source lines of a cell (at most EXCERPT_LINES), for Evidence.excerpt."""
    if cell is None or not 0 <= cell < len(sub.cells):
        return ""
    lines = sub.cells[cell].source.splitlines()
    if line is None:
        return "\n".join(lines[:EXCERPT_LINES])
    end = max(line, min(end_line or line, line + EXCERPT_LINES - 1))
    return "\n".join(lines[line - 1:end])


def evidence_at(ctx: RuleContext, cell: int | None, line: int | None, end_line: int | None = None,
                **values: Any) -> Evidence:
    return Evidence(cell=cell, line=line, excerpt=excerpt(ctx.submission, cell, line, end_line), values=values,
                    where=where(ctx, cell, line) if cell is not None else "")


def fit_evidence(ctx: RuleContext, fit: FitRecord, **values: Any) -> Evidence:
    """The line that ran the fit; when the fit call itself sits in a helper function (entrenar()),
    that call is quoted too."""
    loc = fit.location
    line = loc.line or _static_fit_line(ctx, loc.cell)
    # The whole call when it spans several lines: fit(x, y,\n epochs=..., validation_split=...).
    end = next((f["end_line"] for f in ctx.static.get("fits", []) if f["cell"] == loc.cell and f["line"] == line), None)
    ev = evidence_at(ctx, loc.cell, line, end, fit_index=fit.index, model_id=fit.model_id, **values)
    helper = static_fit_at(ctx, None, loc.function) if loc.function else None
    if helper and helper["cell"] != loc.cell:
        inner = excerpt(ctx.submission, helper["cell"], helper["line"], helper["end_line"])
        ev.excerpt = f"{ev.excerpt}\n# {loc.function}() — {where(ctx, helper['cell'], helper['line'])}:\n{inner}"
    return ev


def fact_evidence(ctx: RuleContext, fact: dict[str, Any], **values: Any) -> Evidence:
    return evidence_at(ctx, fact.get("cell"), fact.get("line"), fact.get("end_line"), **values)


def fit_where(ctx: RuleContext, fit: FitRecord) -> str:
    return where(ctx, fit.location.cell, fit.location.line or _static_fit_line(ctx, fit.location.cell))


def static_fit_at(ctx: RuleContext, cell: int | None, function: str | None = None) -> dict[str, Any] | None:
    """The static fact of the fit call in a cell (the first one), else the one inside `function`."""
    fits = ctx.static.get("fits", [])
    found = next((f for f in fits if cell is not None and f.get("cell") == cell), None)
    if found is None and function:
        found = next((f for f in fits if f.get("function") == function), None)
    return found


def _static_fit_line(ctx: RuleContext, cell: int | None) -> int | None:
    fact = static_fit_at(ctx, cell)
    return fact.get("line") if fact else None


def names(values: list[str]) -> str:
    """'a, b y c' for Spanish messages."""
    values = [v for v in values if v]
    if len(values) <= 1:
        return "".join(values)
    return ", ".join(values[:-1]) + " y " + values[-1]


def mentions_test(source: str | None) -> bool:
    return bool(source) and bool(re.search(r"test", source or "", re.IGNORECASE))
