"""Notebook hygiene: saved outputs, cells that run, code that parses, cells run in order."""

from __future__ import annotations

import itertools

from grader.capture.trace import student_text
from grader.results import Evidence, Verdict
from grader.rules.base import MAX_EVIDENCE, BaseRule, RuleContext, evidence_at, where


def _is_notebook(ctx: RuleContext) -> bool:
    return any(c.origin.file.lower().endswith(".ipynb") for c in ctx.submission.cells)


class OutputsSaved(BaseRule):
    id = "outputs_saved"
    messages = ("pass", "fail", "skip")

    def check(self, ctx: RuleContext) -> Verdict:
        if not _is_notebook(ctx):
            return self.skip(ctx, "no_saved_outputs")
        code = ctx.submission.code_cells
        if not code:
            return self.skip(ctx, "no_code_cells")
        with_outputs = [c for c in code if c.outputs]
        if with_outputs:
            return self.verdict(ctx, "pass", values={"value": len(with_outputs)})
        return self.verdict(ctx, "fail", values={"value": 0})


class CellsRun(BaseRule):
    id = "cells_run"
    messages = ("pass", "fail", "skip")

    def check(self, ctx: RuleContext) -> Verdict:
        trace = ctx.trace
        if trace.status == "not_run":
            return self.skip(ctx, "unreadable" if ctx.submission.load_error else "no_code")
        problems, evidence = [], []
        # The quick check's bound stopped the run: not the student's fault, and what came after is unknown.
        for err in (e for e in trace.errors if e.limit != "check_time"):
            place = where(ctx, err.cell, err.line)
            evalue = student_text(err.evalue)  # no kernel-internal file names (older traces have them)
            problems.append(f"{place} ({err.ename}: {evalue[:120]})")
            evidence.append(evidence_at(ctx, err.cell, err.line, ename=err.ename, evalue=evalue[:300]))
        stopped = {"timeout": "se agotó el tiempo de ejecución", "kernel_died": "el núcleo de Python se cerró",
                   "memory": "se superó el límite de memoria"}
        if trace.status in stopped:
            problems.append(stopped[trace.status])
        if not problems:
            return self.skip(ctx, "check_time") if trace.status == "check_time" else self.verdict(ctx, "pass")
        # A cell that is not Python at all is code_parses' deduction; do not take points twice for it.
        unparsable = {e["cell"] for e in ctx.static.get("syntax_errors", [])}
        only_syntax = trace.status not in stopped and all(
            e.ename in ("SyntaxError", "IndentationError") and e.cell in unparsable for e in trace.errors)
        return self.verdict(ctx, "fail", values={"value": len(problems), "details": "; ".join(problems[:10])},
                            evidence=evidence[:MAX_EVIDENCE], deduct=0.0 if only_syntax else None)


class CodeParses(BaseRule):
    id = "code_parses"
    messages = ("pass", "fail", "warn", "skip")

    def check(self, ctx: RuleContext) -> Verdict:
        if not ctx.submission.code_cells:
            return self.skip(ctx, "no_code")
        errors = ctx.static.get("syntax_errors", [])
        # Cells over the static analysis' size limit (grader.source.parsed) were never parsed: say so.
        large = [u for u in ctx.static.get("unanalyzed", []) if u.get("reason") == "too_large"]
        if not errors and large:
            evidence = [Evidence(cell=u["cell"], line=None, excerpt="", values={"chars": u.get("chars")})
                        for u in large[:MAX_EVIDENCE]]
            return self.verdict(ctx, "warn", values={"where": ", ".join(where(ctx, u["cell"]) for u in large),
                                                     "value": large[0].get("limit")}, evidence=evidence)
        if not errors:
            return self.verdict(ctx, "pass")
        details = "; ".join(f"{where(ctx, e['cell'], e['line'])}: {e['msg']}" for e in errors[:MAX_EVIDENCE])
        evidence = [evidence_at(ctx, e["cell"], e["line"], msg=e["msg"]) for e in errors[:MAX_EVIDENCE]]
        return self.verdict(ctx, "fail", values={"details": details, "value": len(errors)}, evidence=evidence)


class ExecutionOrder(BaseRule):
    id = "execution_order"
    messages = ("pass", "warn", "skip")

    def check(self, ctx: RuleContext) -> Verdict:
        if not _is_notebook(ctx):
            return self.skip(ctx, "not_notebook")
        counted = [c for c in ctx.submission.code_cells if c.execution_count is not None]
        if len(counted) < 2:
            return self.skip(ctx, "no_execution_counts")
        for before, cell in itertools.pairwise(counted):
            if cell.execution_count <= before.execution_count:  # type: ignore[operator]
                evidence = [Evidence(cell=c.index, line=None, excerpt=c.source.splitlines()[0] if c.source else "",
                                     values={"execution_count": c.execution_count}, where=where(ctx, c.index))
                            for c in (before, cell)]
                return self.verdict(ctx, "warn", values={"where": where(ctx, cell.index), "value": cell.execution_count,
                                                         "previous": before.execution_count}, evidence=evidence)
        return self.verdict(ctx, "pass")
