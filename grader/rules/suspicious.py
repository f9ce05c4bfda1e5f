"""`suspicious_code`: a flag for the instructor when a hand-in holds code the homework never needs.

Not a penalty by default (deduction 0): processes, signals, sockets, the grader's own modules or
paths such as /proc point at a hand-in to review by hand, even when the sandbox stopped the attack
silently. The patterns are the rubric's params (see grader/capture/static_suspicious.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from grader.results import Evidence, Verdict
from grader.rules.base import MAX_EVIDENCE, BaseRule, RuleContext, evidence_at, where
from grader.source.suspicious import SuspiciousPatterns, find_suspicious

MAX_LISTED = 8  # findings spelled out in the student's message; the rest are counted

KINDS = ("import", "call", "attribute", "patch", "dynamic", "listing", "delete", "string", "shell")


class SuspiciousCode(BaseRule):
    id = "suspicious_code"
    params = {"modules": "list[str]", "calls": "list[str]", "attributes": "list[str]", "patched_modules": "list[str]",
              "dynamic_calls": "list[str]", "listing_calls": "list[str]", "delete_calls": "list[str]",
              "shell_calls": "list[str]", "shell_allowed": "list[str]", "strings": "dict[str,str]"}
    messages = ("pass", "warn", "skip") + tuple(f"warn_{kind}" for kind in KINDS)

    def check_params(self, params: Mapping[str, Any]) -> tuple[str, str] | None:
        """(key, problem) for the first regular expression of `strings` that does not compile."""
        for label, pattern in params.get("strings", {}).items():
            try:
                re.compile(pattern)
            except re.error as exc:
                return f"strings.{label}", f"invalid regular expression {pattern!r}: {exc}"
        return None

    def check(self, ctx: RuleContext) -> Verdict:
        sub = ctx.submission
        if sub.load_error is not None:
            return self.skip(ctx, "unreadable")
        if not sub.code_cells:
            return self.skip(ctx, "no_code")
        spec = self.spec(ctx)
        findings = find_suspicious(sub, SuspiciousPatterns.from_params(spec.params))
        if not findings:
            return self.verdict(ctx, "pass")
        details = _details(ctx, findings)
        evidence = [evidence_at(ctx, f["cell"], f["line"], f["end_line"], kind=f["kind"], found=f["found"],
                                pattern=f["pattern"]) for f in findings]
        first = findings[0]
        return self.verdict(ctx, "warn", values={"value": len(findings), "details": details,
                                                 "where": where(ctx, first["cell"], first["line"])},
                            evidence=_one_per_line(evidence)[:MAX_EVIDENCE])


def _details(ctx: RuleContext, findings: list[dict[str, Any]]) -> str:
    """One phrase per line, kind and pattern, from the rubric: "celda 5, línea 2: menciona claves
    SSH: '~/.ssh/*', '/root/.ssh'"; at most MAX_LISTED of them, the rest counted."""
    grouped: dict[tuple[Any, ...], dict[str, Any]] = {}
    for f in findings:
        key = (f["cell"], f["line"], f["kind"], f["pattern"])
        seen = grouped.get(key)
        grouped[key] = {**seen, "found": f"{seen['found']}, {f['found']}"} if seen else f
    spec = ctx.rubric.rules[SuspiciousCode.id]
    phrases = [f"{where(ctx, f['cell'], f['line'])}: {spec.message('warn_' + f['kind'], f)}"
               for f in grouped.values()]
    details = "; ".join(phrases[:MAX_LISTED])
    if len(phrases) > MAX_LISTED:
        details += f" (y {len(phrases) - MAX_LISTED} más)"
    return details


def _one_per_line(evidence: list[Evidence]) -> list[Evidence]:
    """Several findings on one line are quoted once (verdict() would drop the later ones anyway);
    what was found is merged so the instructor sees all of it."""
    merged: dict[tuple[int | None, int | None], Evidence] = {}
    for ev in evidence:
        kept = merged.setdefault((ev.cell, ev.line), ev)
        if kept is not ev:
            kept.values["found"] = f"{kept.values['found']}, {ev.values['found']}"
            for key in ("kind", "pattern"):
                kept.values[key] = ", ".join(dict.fromkeys([*kept.values[key].split(", "), ev.values[key]]))
    return list(merged.values())
