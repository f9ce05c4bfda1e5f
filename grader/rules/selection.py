"""no_test_tuning's check of the source for models chosen or ranked by their test results.

grader.source.selection finds the lines; this turns the first into the rule's fail, quoting every
selecting line. Kept apart from protocol.py so that the rule only needs a one-line hook.
"""

from __future__ import annotations

from grader.results import Evidence
from grader.rules.base import MAX_EVIDENCE, RuleContext, fact_evidence, where

KEY = "fail_test_selection"


def selection_problem(ctx: RuleContext) -> tuple[str, dict, list[Evidence]] | None:
    """(key, values, evidence) when the code picks or ranks models by a test metric, else None."""
    found = ctx.test_selections
    if not found:
        return None
    first = found[0]
    evidence = [fact_evidence(ctx, f, how=f["how"]) for f in found[:MAX_EVIDENCE]]
    return KEY, {"where": where(ctx, first["cell"], first["line"]), "value": first["text"]}, evidence
