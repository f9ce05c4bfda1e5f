"""The protocol of "Consideraciones iniciales": 80/20 validation split, a new model per training,
and a test set that never trains or selects models."""

from __future__ import annotations

from typing import Any

from grader.capture.trace import FitRecord
from grader.results import Evidence, Verdict
from grader.rules import hidden_training
from grader.rules.attribution import touches_test
from grader.rules.base import (
    MAX_EVIDENCE,
    BaseRule,
    RuleContext,
    evidence_at,
    fact_evidence,
    fit_evidence,
    fit_where,
    mentions_test,
    static_fit_at,
    where,
)
from grader.rules.integrity import unrecorded_facts
from grader.rules.selection import selection_problem
from grader.source.refits import repeated_fits

TRAIN_ROWS = 60_000
_SELECTING_CALLBACKS = {"EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau"}


class Split20(BaseRule):
    id = "split_20"
    params = {"fraction": "number", "tolerance": "number"}
    messages = ("pass", "fail_no_validation", "fail_test_as_validation", "fail_wrong_fraction", "warn_unverified",
                "skip")

    def check(self, ctx: RuleContext) -> Verdict:
        if skipped := self.skip_unless_trabajo2(ctx):
            return skipped
        spec = self.spec(ctx)
        want, tol = spec.params["fraction"], spec.params["tolerance"]
        # Executed fits are checked on their real arrays; fits in cells that failed before reaching
        # them (or in a hand-in that never ran) are checked on their source.
        ran = {f.location.cell for f in ctx.trace.fits}
        failed = {e.cell for e in ctx.trace.errors}
        unexecuted = [f for f in ctx.static.get("fits", [])
                      if f["cell"] not in ran and (not ctx.trace.fits or f["cell"] in failed)]
        # Fits that certainly ran but never reached the probe (a restored Model.fit) are judged
        # on their source too.
        listed = {(f["cell"], f["line"]) for f in unexecuted}
        unexecuted += [f for f in unrecorded_facts(ctx) if (f["cell"], f["line"]) not in listed]
        steps = hidden_training.step_count(ctx)  # train_on_batch / GradientTape trainings
        if not ctx.trace.fits and not unexecuted and not steps:
            return self.skip(ctx, "no_fits")
        problems = [p for fit in ctx.trace.fits if (p := self._fit_problem(ctx, fit, want, tol))]
        problems += [p for fact in unexecuted if (p := self._static_problem(ctx, fact, want, tol))]
        split = any(_slice_share(s, want, tol) for s in ctx.static.get("train_slices", []))
        problems += hidden_training.split_problems(ctx, split)
        total = len(ctx.trace.fits) + len(unexecuted) + steps
        if not problems:
            return self.verdict(ctx, "pass", values={"fits": total})
        # The worst problem names the message; every problem is evidence.
        order = ["fail_test_as_validation", "fail_no_validation", "fail_wrong_fraction", "warn_unverified"]
        problems.sort(key=lambda p: order.index(p[0]))
        key, place, value, _ = problems[0]
        return self.verdict(ctx, key.split("_", 1)[0], key, values={"where": place, "value": value, "fits": total},
                            evidence=[p[3] for p in problems[:MAX_EVIDENCE]])

    def _fit_problem(self, ctx: RuleContext, fit: FitRecord, want: float, tol: float) -> tuple | None:
        place = fit_where(ctx, fit)
        fact = static_fit_at(ctx, fit.location.cell, fit.location.function) or {}
        if fit.validation_data:
            x_val = fit.validation_data[0]
            if touches_test(x_val):
                shown = fact.get("validation_data") or "(x_test, y_test)"
                return ("fail_test_as_validation", place, shown, fit_evidence(ctx, fit, validation=shown))
            n_val, n_train = _train_rows(x_val), _train_rows(fit.x)
            if n_val is None or n_train is None:
                return ("warn_unverified", place, "validation_data sin filas identificables",
                        fit_evidence(ctx, fit))
            share = n_val / TRAIN_ROWS if n_val + n_train >= TRAIN_ROWS * (1 - tol) else n_val / (n_val + n_train)
            if abs(share - want) > tol:
                return ("fail_wrong_fraction", place, f"{share:.0%}", fit_evidence(ctx, fit, share=share))
            return None
        if "validation_data" in fit.other_kwargs:
            # Something the probe could not record as arrays (a tf.data pipeline, a generator).
            shown = fact.get("validation_data") or fit.other_kwargs["validation_data"][:80]
            if mentions_test(fact.get("validation_data")):
                return ("fail_test_as_validation", place, shown, fit_evidence(ctx, fit, validation=shown))
            return ("warn_unverified", place, shown, fit_evidence(ctx, fit))
        if fit.validation_split and fit.validation_split > 0:
            if abs(fit.validation_split - want) > tol:
                value = f"{fit.validation_split:.0%} (validation_split={fit.validation_split:g})"
                return ("fail_wrong_fraction", place, value, fit_evidence(ctx, fit, share=fit.validation_split))
            return None
        return ("fail_no_validation", place, "", fit_evidence(ctx, fit))

    def _static_problem(self, ctx: RuleContext, fact: dict[str, Any], want: float, tol: float) -> tuple | None:
        place = where(ctx, fact["cell"], fact["line"])
        split, data = fact.get("validation_split"), fact.get("validation_data")
        kwargs = fact.get("kwargs", {})
        if data:
            if mentions_test(data):
                return ("fail_test_as_validation", place, data, fact_evidence(ctx, fact, validation=data))
            if any(_slice_share(s, want, tol) for s in ctx.static.get("train_slices", [])):
                return None
            return ("warn_unverified", place, data, fact_evidence(ctx, fact))
        if split is not None:
            if abs(split - want) > tol:
                return ("fail_wrong_fraction", place, f"{split:.0%}", fact_evidence(ctx, fact, share=split))
            return None
        if "validation_split" in kwargs:
            return ("warn_unverified", place, f"validation_split={kwargs['validation_split']}", fact_evidence(ctx, fact))
        return ("fail_no_validation", place, "", fact_evidence(ctx, fact))


def _train_rows(ref: Any) -> int | None:
    if ref is None:
        return None
    if ref.rows is not None:
        # "both": images that Fashion-MNIST has in train and test alike; in an x_train slice they are train rows.
        return ref.rows.get("train", 0) + ref.rows.get("both", 0)
    return ref.shape[0] if ref.shape else None


def _slice_share(fact: dict[str, Any], want: float, tol: float) -> bool:
    """A manual split of x_train whose validation part is `want` of the rows (12000 of 60000)."""
    for size in (fact.get("test_size"), fact.get("train_size")):
        if size is not None:
            share = size / TRAIN_ROWS if size > 1 else size
            if abs(share - want) <= tol or abs(share - (1 - want)) <= tol:
                return True
    for bound in (fact.get("start"), fact.get("stop")):
        if bound is not None:
            share = abs(bound) / TRAIN_ROWS
            if abs(share - want) <= tol or abs(share - (1 - want)) <= tol:
                return True
    return False


class NewModelPerFit(BaseRule):
    id = "new_model_per_fit"
    messages = ("pass", "fail", "fail_source", "fail_source_loop", "skip")

    def check(self, ctx: RuleContext) -> Verdict:
        if skipped := self.skip_unless_trabajo2(ctx):
            return skipped
        if not ctx.trace.fits:
            # No training was recorded: the code itself may still show a fit repeated on one object.
            # Finding none proves nothing (helpers, attributes), so that stays a skip.
            return self._from_source(ctx) or self.skip(ctx, "nothing_trained")
        repeated = [f for f in ctx.trace.fits if f.prior_fits > 0]
        if not repeated:
            return self.verdict(ctx, "pass")
        first = repeated[0]
        return self.verdict(ctx, "fail", values={"where": fit_where(ctx, first), "value": first.prior_fits},
                            evidence=[fit_evidence(ctx, f, prior_fits=f.prior_fits) for f in repeated[:MAX_EVIDENCE]])

    def _from_source(self, ctx: RuleContext) -> Verdict | None:
        found = repeated_fits(ctx.submission)
        if not found:
            return None
        first = found[0]
        earlier = where(ctx, first.earlier.cell, first.earlier.line)
        evidence = [evidence_at(ctx, r.fit.cell, r.fit.line, r.fit.end_line, variable=r.name,
                                earlier=where(ctx, r.earlier.cell, r.earlier.line)) for r in found]
        if not first.in_loop:  # the fit that trained the object first, right after the repeat
            evidence.insert(1, evidence_at(ctx, first.earlier.cell, first.earlier.line, first.earlier.end_line,
                                           variable=first.name))
        return self.verdict(ctx, "fail", "fail_source_loop" if first.in_loop else "fail_source",
                            values={"where": where(ctx, first.fit.cell, first.fit.line), "earlier": earlier,
                                    "name": first.name},
                            evidence=evidence[:MAX_EVIDENCE])


class NoTestTuning(BaseRule):
    id = "no_test_tuning"
    messages = ("pass", "fail_test_in_training", "fail_test_as_validation", "fail_test_monitored",
                "warn_test_for_selection", "fail_test_selection", "skip")

    def check(self, ctx: RuleContext) -> Verdict:
        if skipped := self.skip_unless_trabajo2(ctx):
            return skipped
        if ctx.trace.fits:
            found = self._from_trace(ctx)
        elif ctx.static.get("fits"):
            found = self._from_static(ctx)
        elif hidden_training.trains_by_steps(ctx):
            found = None
        else:
            return self.skip(ctx, "no_fits")
        if found is None or found[0] == "warn_test_for_selection":
            # A hidden fit (one that ran but never reached the probe) is judged on its source, and a
            # training outside fit (train_on_batch, GradientTape) on its steps and source.
            found = (next((p for f in unrecorded_facts(ctx) if (p := self._fact_problem(ctx, f))), None)
                     or hidden_training.tuning_problem(ctx) or found)
        if found is None or found[0] == "warn_test_for_selection":
            # Fits that never ran (a cell that raised) are judged on their source; then a model picked
            # or ranked by its test result in the code (grader.rules.selection).
            found = next((p for f in ctx.unexecuted_fit_facts if (p := self._fact_problem(ctx, f))), None) \
                or selection_problem(ctx) or found
        if found is None:
            return self.verdict(ctx, "pass")
        key, values, evidence = found
        return self.verdict(ctx, key.split("_", 1)[0], key, values=values, evidence=evidence)

    def _from_trace(self, ctx: RuleContext) -> tuple[str, dict, list[Evidence]] | None:
        for fit in ctx.trace.fits:
            if touches_test(fit.x):
                rows = fit.x.rows.get("test") if fit.x and fit.x.rows else fit.x.shape[0]  # type: ignore[union-attr]
                return "fail_test_in_training", {"where": fit_where(ctx, fit), "value": rows}, [fit_evidence(ctx, fit)]
        on_test = [f for f in ctx.trace.fits if f.validation_data and touches_test(f.validation_data[0])]
        # A callback choosing epochs or weights on the test set is the worse of the two: report it first.
        monitored = [(f, cb.class_name) for f in on_test for cb in f.callbacks if cb.class_name in _SELECTING_CALLBACKS]
        if monitored:
            fit, name = monitored[0]
            return "fail_test_monitored", {"where": fit_where(ctx, fit), "value": name}, [fit_evidence(ctx, fit)]
        if on_test:
            evidence = [fit_evidence(ctx, f) for f in on_test[:MAX_EVIDENCE]]
            return ("fail_test_as_validation", {"where": fit_where(ctx, on_test[0]), "value": "validation_data"},
                    evidence)
        final = ctx.attribution.final_model_id
        tested = ctx.test_evals()
        others = [e for e in tested if e.model_id != final]
        if others:
            first = others[0]
            ev = [evidence_at(ctx, e.location.cell, e.location.line) for e in others[:MAX_EVIDENCE]]
            return ("warn_test_for_selection", {"where": where(ctx, first.location.cell, first.location.line),
                                                "value": len(tested)}, ev)
        return None

    def _from_static(self, ctx: RuleContext) -> tuple[str, dict, list[Evidence]] | None:
        found = next((p for fact in ctx.static["fits"] if (p := self._fact_problem(ctx, fact))), None)
        if found is not None:
            return found
        tested = [e for e in ctx.static.get("evals", []) if e["kind"] == "evaluate" and any(mentions_test(a) for a in e["args"])]
        if len(tested) > 1:
            return ("warn_test_for_selection", {"where": where(ctx, tested[0]["cell"], tested[0]["line"]),
                                                "value": len(tested)}, [fact_evidence(ctx, e) for e in tested[:MAX_EVIDENCE]])
        return None

    def _fact_problem(self, ctx: RuleContext, fact: dict[str, Any]) -> tuple[str, dict, list[Evidence]] | None:
        """What the source of one fit call shows: training on test, or validating on it."""
        if mentions_test(fact.get("x")):
            return ("fail_test_in_training", {"where": where(ctx, fact["cell"], fact["line"]), "value": fact["x"]},
                    [fact_evidence(ctx, fact)])
        if mentions_test(fact.get("validation_data")):
            key = "fail_test_monitored" if fact.get("callbacks") else "fail_test_as_validation"
            value = "EarlyStopping" if fact.get("callbacks") else "validation_data"
            return key, {"where": where(ctx, fact["cell"], fact["line"]), "value": value}, [fact_evidence(ctx, fact)]
        return None
