"""Integrity of the capture: fits the code certainly made that never reached the probe, and the
probe's own reports of student code undoing its patches.

Everything the probe does inside the kernel can be undone by the student (put the real
`keras.Model.fit` back, delete the probe module), so the main check is on the trusted side: the
source says which fit calls certainly ran (grader.source.fit_sites), the Trace says which cells ran
to the end and which fits were recorded where; a certain fit with no recording is an "unrecorded
fit". Its static facts are then judged by split_20 and no_test_tuning like those of a cell that
never ran, so `validation_data=(x_test, y_test)` in a hidden fit still fails. The same holds for
training outside fit (`train_on_batch`, `apply_gradients`): a step call that certainly ran with no
step recorded in its cell is an unrecorded step (grader.rules.hidden_training judges its data).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from grader.capture.events import tamperings
from grader.capture.trace import Tampering, Trace
from grader.load import Submission
from grader.results import Verdict
from grader.rules.base import MAX_EVIDENCE, BaseRule, RuleContext, evidence_at, names, where
from grader.source.fit_sites import ExpectedFit, expected_fits, reached_calls
from grader.source.parsed import parse_cell
from grader.source.static import strip_magics
from grader.source.train_steps import method_call

_STOPPING = ("Timeout", "KernelDied", "MemoryLimit")
TRAINING_KINDS = ("train_on_batch", "apply_gradients", "minimize")  # static train steps that train
WATCHED_METHODS = ("fit", "evaluate", "compile", "predict", "__init__")  # what the probe wraps


@dataclass(frozen=True)
class UnrecordedFit:
    """A fit call site that certainly ran but that the probe did not record (often enough)."""

    fact: dict[str, Any]  # the static fit fact: cell, line, end_line, validation_data, kwargs, ...
    cell: int  # where it should have been recorded: the running cell
    line: int  # ... and the line of the statement that ran it there
    function: str | None  # the helper holding the fit, called at (cell, line)
    expected: int  # fits the probe should have recorded at (cell, line)
    recorded: int  # fits it did record there


def started_cells(sub: Submission, trace: Trace) -> set[int]:
    """Student cells the runner started (trace.cells_started); where it was not recorded (a
    synthetic trace): every code cell of a complete run, else the cells up to the first stop."""
    if trace.status == "not_run":
        return set()
    code = {c.index for c in sub.code_cells if c.source.strip()}
    if trace.cells_started is not None:
        return set(trace.cells_started) & code
    if trace.status == "ok":
        return code
    stops = [e.cell for e in trace.errors if e.ename in _STOPPING and e.cell is not None]
    return {c for c in code if c <= min(stops)} if stops else set()


def completed_cells(sub: Submission, trace: Trace) -> set[int]:
    """Cells that ran to their end without an error (a cell a dead kernel was running did not),
    and whose fits the probe could place: not after a failed install, not after an at_cell(i) that
    failed for another reason than the probe having been removed (then the cell index is stale)."""
    if any(f.step == "install" for f in trace.hidden_failures):
        return set()
    started = started_cells(sub, trace)
    failed = {e.cell for e in trace.errors}
    if trace.status in ("kernel_died", "memory") and started:
        failed.add(max(started))
    failed |= {f.cell for f in trace.hidden_failures
               if f.step == "at_cell" and f.cell is not None and f.ename != "GraderProbeLost"}
    return started - failed


def unrecorded_fits(sub: Submission, trace: Trace, static: dict[str, Any]) -> list[UnrecordedFit]:
    """Fit call sites that certainly ran but are missing from trace.fits."""
    found: list[UnrecordedFit] = []
    # A fit the probe failed to record (its own error) is not hidden by the student.
    seen = [f.location for f in trace.fits] + trace.failed_fits
    for exp in expected_fits(sub, completed_cells(sub, trace), static):
        recorded = sum(1 for loc in seen if _recorded_at(loc, exp))
        if recorded < exp.count:
            found += [UnrecordedFit(fact, exp.cell, exp.first_line, exp.function, exp.count, recorded)
                      for fact in exp.sites]
    return found


def step_facts(ctx: RuleContext) -> list[dict[str, Any]]:
    """Static train steps (not measurements) in cells that ran, or in any cell when nothing ran."""
    started = started_cells(ctx.submission, ctx.trace)
    facts = [f for f in ctx.static.get("train_steps", []) if isinstance(f, dict) and f.get("kind") in TRAINING_KINDS]
    return [f for f in facts if not started or f.get("cell") in started]


def unrecorded_steps(ctx: RuleContext) -> list[dict[str, Any]]:
    """Static train steps that certainly ran (top level of a cell that ran to its end, loops over a
    literal range: grader.source.fit_sites' rules) although the probe recorded no step of that kind
    in that cell: the probe was bypassed (`Model.train_on_batch.__wrapped__(...)`) or undone."""
    recorded = {(s.kind, s.location.cell) for s in ctx.trace.train_steps}
    facts = {(f.get("cell"), f.get("line")): f for f in step_facts(ctx) if f.get("kind") != "minimize"}
    found = []
    for cell in sorted(completed_cells(ctx.submission, ctx.trace) & {c for c, _ in facts}):
        source, _ = strip_magics(ctx.submission.cells[cell].source)
        try:
            tree = ast.parse(source or "")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for call in reached_calls(tree.body):
            fact = facts.get((cell, call.lineno))
            if fact is not None and method_call(call)[0] == fact["kind"] and (fact["kind"], cell) not in recorded:
                found.append(fact)
    return found


def _recorded_at(loc: Any, exp: ExpectedFit) -> bool:
    if loc.cell != exp.cell or (loc.function is None) != (exp.function is None):
        return False
    return loc.line is None or exp.first_line <= loc.line <= exp.last_line


def unrecorded(ctx: RuleContext) -> list[UnrecordedFit]:
    """unrecorded_fits() of the context, computed once for the three rules that read it."""
    cached = ctx.__dict__.get("_unrecorded_fits")
    if cached is None:
        cached = unrecorded_fits(ctx.submission, ctx.trace, ctx.static)
        ctx.__dict__["_unrecorded_fits"] = cached
    return cached


def unrecorded_facts(ctx: RuleContext) -> list[dict[str, Any]]:
    """The static facts of the unrecorded fits, each once, for the rules that judge fit arguments."""
    seen: dict[tuple, dict[str, Any]] = {}
    for u in unrecorded(ctx):
        seen.setdefault((u.fact.get("cell"), u.fact.get("line")), u.fact)
    return list(seen.values())


class FitsRecorded(BaseRule):
    """Every fit that certainly ran reached the grader, and nothing undid the probe."""

    id = "fits_recorded"
    messages = ("pass", "fail_unrecorded", "fail_unrecorded_steps", "fail_tampered", "skip")

    def check(self, ctx: RuleContext) -> Verdict:
        if ctx.submission.load_error is not None:
            return self.skip(ctx, "unreadable")
        if ctx.trace.status == "not_run":
            return self.skip(ctx, "not_run")
        hidden = unrecorded(ctx)
        tampered = _first_per_cell(tamperings(ctx.trace))
        if hidden:
            first = hidden[0]
            evidence = [self._site_evidence(ctx, u) for u in hidden[:MAX_EVIDENCE]]
            evidence += [self._tamper_evidence(ctx, t) for t in tampered[:MAX_EVIDENCE - len(evidence)]]
            return self.verdict(ctx, "fail", "fail_unrecorded", evidence=evidence, values={
                "where": where(ctx, first.fact.get("cell"), first.fact.get("line")), "value": len(hidden),
                "called": self._called(ctx, first), "tampered": self._tamper_text(ctx, tampered)})
        steps = unrecorded_steps(ctx)
        if steps:  # train_on_batch / apply_gradients that ran but never reached the probe
            first_step = steps[0]
            return self.verdict(ctx, "fail", "fail_unrecorded_steps", evidence=[
                evidence_at(ctx, f["cell"], f["line"], f["end_line"], unrecorded=True, kind=f["kind"])
                for f in steps[:MAX_EVIDENCE]], values={
                "where": where(ctx, first_step["cell"], first_step["line"]), "value": first_step["kind"],
                "tampered": self._tamper_text(ctx, tampered)})
        if tampered:
            first = tampered[0]
            return self.verdict(ctx, "fail", "fail_tampered",
                                evidence=[self._tamper_evidence(ctx, t) for t in tampered[:MAX_EVIDENCE]],
                                values={"where": self._tamper_where(ctx, first), "value": _replaced(tampered)})
        return self.verdict(ctx, "pass", values={"value": len(ctx.trace.fits)})

    def _called(self, ctx: RuleContext, u: UnrecordedFit) -> str:
        if u.function is None:
            return ""
        return f" (dentro de `{u.function}()`, llamada en la {where(ctx, u.cell, u.line)})"

    def _site_evidence(self, ctx: RuleContext, u: UnrecordedFit) -> Any:
        fact = u.fact
        return evidence_at(ctx, fact.get("cell"), fact.get("line"), fact.get("end_line"), unrecorded=True,
                           run_at=where(ctx, u.cell, u.line), function=u.function, expected=u.expected,
                           recorded=u.recorded)

    def _tamper_where(self, ctx: RuleContext, t: Tampering) -> str:
        if t.cell is not None:
            line = _replacing_line(ctx.submission, t.cell)
            return where(ctx, t.cell, line) if line else "detectado en la " + where(ctx, t.cell, t.line)
        if t.before is not None:
            return f"antes de la {where(ctx, t.before)}"
        return "celda desconocida"

    def _tamper_text(self, ctx: RuleContext, tampered: list[Tampering]) -> str:
        if not tampered:
            return ""
        return f"Además, el código sustituyó {_replaced(tampered)} ({self._tamper_where(ctx, tampered[0])})."

    def _tamper_evidence(self, ctx: RuleContext, t: Tampering) -> Any:
        cell = t.cell if t.cell is not None else t.before
        line = (_replacing_line(ctx.submission, t.cell) or t.line) if t.cell is not None else None
        return evidence_at(ctx, cell, line, tampered=list(t.replaced), noticed_before=t.before,
                           noticed_line=t.line)


def _first_per_cell(found: list[Tampering]) -> list[Tampering]:
    """A probe removed for good fails every later hidden cell: keep one report per place."""
    seen: dict[tuple, Tampering] = {}
    for t in found:
        key = (t.cell, t.replaced) if t.cell is not None else ("lost", t.replaced)
        seen.setdefault(key, t)
    # Located reports first, in cell order; "the probe was removed" (noticed later) after them.
    return sorted(seen.values(), key=lambda t: (t.cell is None, t.cell if t.cell is not None else t.before or 0))


def _replaced(tampered: list[Tampering]) -> str:
    """'`keras.Model.fit` y el módulo del corrector' for Spanish messages."""
    found = sorted({r for t in tampered for r in t.replaced})
    return names([f"`keras.{r}`" if r != "grader_probe" else "el módulo del corrector (`grader_probe`)"
                  for r in found])


def _replacing_line(sub: Submission, cell: int) -> int | None:
    """The line of the cell that assigns a Keras method (`keras.Model.fit = ...`, `setattr(.., 'fit',
    ..)`): the probe notices the change later, at its next call."""
    tree = parse_cell(sub.cells[cell].source).tree if 0 <= cell < len(sub.cells) else None
    if tree is None:
        return None
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Attribute) and t.attr in WATCHED_METHODS for t in targets):
            return node.lineno
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr"
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in WATCHED_METHODS):
            return node.lineno
    return None
