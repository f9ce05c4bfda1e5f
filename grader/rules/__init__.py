"""Grading rules: one module per family; `grade()` runs them all (see registry.py)."""

from grader.rules.base import Rule, RuleContext
from grader.rules.registry import RULES, grade, load_rubric, register, score, validate_rubric

__all__ = ["RULES", "Rule", "RuleContext", "grade", "load_rubric", "register", "score", "validate_rubric"]
