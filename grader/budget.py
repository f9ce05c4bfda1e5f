"""How much training the trusted retrain may do for one hand-in (kept free of TensorFlow imports,
so the batch parent and the CLI can build options without loading it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    name: str = "full"  # "full": the student's epochs; "quick": non-final runs capped
    quick_epochs: int = 2
    max_epochs: int = 100  # hard cap whatever the student asked
    time_budget_s: float = 1800  # per hand-in; when exceeded, remaining runs get status "budget"
