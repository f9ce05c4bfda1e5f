"""Did each exercise do what it asks? Activations (1), initializers (2), optimizers (3),
regularisation of the final network (4.1) and its single test evaluation (4.2).

The executed trace decides; when execution did not reach an exercise, the static facts of its cells
stand in (status warn: credit for code that was never seen to run is partial).
"""

from __future__ import annotations

from typing import Any

from grader.capture.trace import FitRecord
from grader.results import Evidence, Verdict
from grader.rules.attribution import regularization_of, signature
from grader.rules.base import (
    MAX_EVIDENCE,
    BaseRule,
    RuleContext,
    evidence_at,
    fact_evidence,
    fit_evidence,
    fit_where,
    mentions_test,
    names,
    where,
)

_SPANISH = {"sigmoid": "sigmoide", "relu": "ReLU", "zeros": "ceros", "normal": "normal aleatoria",
            "glorot_uniform": "Glorot uniforme (por defecto)"}


def _static_where(ctx: RuleContext, facts: list[dict[str, Any]]) -> str:
    cells = sorted({f["cell"] for f in facts})
    if len(cells) > 1 and all(not ctx.submission.cells[c].origin.file.lower().endswith(".py") for c in cells):
        return "celdas " + names([str(c + 1) for c in cells[:4]])
    return names([where(ctx, c) for c in cells[:3]])


def _static_evidence(ctx: RuleContext, facts: list[dict[str, Any]]) -> list[Evidence]:
    seen, out = set(), []
    for fact in facts:
        if (fact["cell"], fact["line"]) not in seen:
            seen.add((fact["cell"], fact["line"]))
            out.append(fact_evidence(ctx, fact, name=fact.get("name")))
    return out[:MAX_EVIDENCE]


def _used_evidence(ctx: RuleContext, used: list[tuple[str, Any]]) -> list[Evidence]:
    """One quote per distinct name: a static fact's line or the fit's line."""
    out, seen = [], set()
    for name, src in used:
        if name not in seen:
            seen.add(name)
            out.append(fact_evidence(ctx, src, name=name) if isinstance(src, dict) else fit_evidence(ctx, src, name=name))
    return out[:MAX_EVIDENCE]


def _mentioned(ctx: RuleContext, kind: str, exercise: str) -> list[dict[str, Any]]:
    """Names written as plain strings in the exercise's cells (arguments of helper functions)."""
    return [m for m in ctx.static_facts("mentions", exercise) if m["kind"] == kind]


class _ExerciseRule(BaseRule):
    exercise = ""

    def exercise_fits(self, ctx: RuleContext) -> list[FitRecord]:
        return ctx.fits(self.exercise)

    def cut_by_check(self, ctx: RuleContext) -> bool:
        """Stopped at or before one of this exercise's cells: its comparison may be missing for that alone."""
        return any(ctx.cell_exercise.get(c) == self.exercise for c in ctx.cells_cut_by_check)

    def use_static(self, ctx: RuleContext, fits: list[FitRecord]) -> bool:
        return not fits and (ctx.execution_incomplete or not ctx.trace.fits)

    def crashed(self, ctx: RuleContext, kind: str, mention: str) -> list[dict[str, Any]]:
        """Static facts of this exercise's cells that raised an error, or that the quick check's bound
        kept from running (the stop's cell and those after it): the runs that never happened."""
        failed = {e.cell for e in ctx.trace.errors} | ctx.cells_cut_by_check
        facts = ctx.static_facts(kind, self.exercise) + _mentioned(ctx, mention, self.exercise)
        return [f for f in facts if f["cell"] in failed and ctx.cell_exercise.get(f["cell"]) == self.exercise]

    def static_status(self, ctx: RuleContext, metrics: tuple[str, ...] = ("val_accuracy", "accuracy"),
                      cells: set[int] | None = None) -> tuple[str, str]:
        """(status, key) for work seen only in the code: a pass when the cells (default: all of the
        exercise's) kept the training output they printed when the student ran them, else a warn."""
        if cells is None:
            cells = {c for c, ex in ctx.cell_exercise.items() if ex == self.exercise}
        if any(r["cell"] in cells and r["metric"] in metrics for r in ctx.reported):
            return "pass", "pass_saved"
        return "warn", "warn_static"


class Ex1Activations(_ExerciseRule):
    id, exercise = "ex1_activations", "ex1"
    params = {"min_dense_layers": "int", "required": "list[str]"}
    messages = ("pass", "pass_saved", "fail_missing", "warn_shallow", "warn_static", "skip")

    def check(self, ctx: RuleContext) -> Verdict:
        if not ctx.looks_like_trabajo2:
            return self.not_trabajo2(ctx)
        spec = self.spec(ctx)
        required = list(spec.params["required"])
        fits = self.exercise_fits(ctx) or [f for f in ctx.fits() if f.model.layers]
        if self.use_static(ctx, self.exercise_fits(ctx)):
            facts = [f for f in ctx.static_facts("activations", "ex1") + _mentioned(ctx, "activation", "ex1")
                     if f["name"] in required]
            found = {f["name"] for f in facts}
            if found >= set(required):
                status, key = self.static_status(ctx)
                return self.verdict(ctx, status, key, evidence=_static_evidence(ctx, facts),
                                    values={"where": _static_where(ctx, facts),
                                            "value": names([_SPANISH.get(a, a) for a in required])})
            return self._missing(ctx, required, found, _static_evidence(ctx, facts))
        hidden: dict[str, list[FitRecord]] = {}
        for fit in fits:
            for act in signature(fit)["activation"]:
                hidden.setdefault(act or "linear", []).append(fit)
        found = {a for a in hidden if a in required}
        if found < set(required):
            crashed = [f for f in self.crashed(ctx, "activations", "activation") if f["name"] in required]
            if found | {f["name"] for f in crashed} >= set(required):
                status, key = self.static_status(ctx, cells={f["cell"] for f in crashed})
                return self.verdict(ctx, status, key, evidence=_static_evidence(ctx, crashed),
                                    values={"where": _static_where(ctx, crashed),
                                            "value": names([_SPANISH.get(a, a) for a in required])})
            return self._missing(ctx, required, found, [fit_evidence(ctx, f) for f in fits[:MAX_EVIDENCE]])
        compared = [f for a in required for f in hidden[a]]
        layers = max(sum(1 for layer in f.model.layers if layer.type == "Dense") for f in compared)
        values = {"value": names([_SPANISH.get(a, a) for a in required]), "layers": layers}
        evidence = [fit_evidence(ctx, f, activation=a) for a in required for f in hidden[a][:2]]
        if layers < spec.params["min_dense_layers"]:
            return self.verdict(ctx, "warn", "warn_shallow", values=values, evidence=evidence)
        return self.verdict(ctx, "pass", values=values, evidence=evidence)

    def _missing(self, ctx: RuleContext, required: list[str], found: set[str], evidence: list[Evidence]) -> Verdict:
        missing = [_SPANISH.get(a, a) for a in required if a not in found]
        return self.verdict(ctx, "fail", "fail_missing", values={"value": names(missing)}, evidence=evidence)


class Ex2Initializers(_ExerciseRule):
    id, exercise = "ex2_initializers", "ex2"
    params = {"required": "list[str]", "normal_initializers": "list[str]", "zero_initializers": "list[str]",
              "default_initializer": "str"}
    messages = ("pass", "pass_saved", "fail_missing", "fail_uniform_as_normal", "warn_static", "skip")

    def check(self, ctx: RuleContext) -> Verdict:
        if not ctx.looks_like_trabajo2:
            return self.not_trabajo2(ctx)
        p = self.spec(ctx).params
        fits = self.exercise_fits(ctx)
        static = self.use_static(ctx, fits)
        if static:
            facts = ctx.static_facts("initializers", "ex2") + _mentioned(ctx, "initializer", "ex2")
            used = [(f["name"], f) for f in facts]
            # A Dense layer without kernel_initializer uses Keras' default.
            used += [(p["default_initializer"], f) for f in ctx.static_facts("layers", "ex2")
                     if f["type"] == "Dense" and not f.get("initializer_source")]
        else:
            used = [(init or p["default_initializer"], fit) for fit in fits for init in set(signature(fit)["initializer"])]
            if fits and not any(name == p["default_initializer"] for name, _ in used):
                # The ReLU network of exercise 1 already is the default-initialised baseline.
                used += [(p["default_initializer"], f) for f in ctx.fits("ex1")
                         if set(signature(f)["initializer"]) <= {p["default_initializer"], None}
                         and "relu" in signature(f)["activation"]][:1]
            crashed = self.crashed(ctx, "initializers", "initializer")
            used += [(f["name"], f) for f in crashed]
            static = bool(crashed)
        crashed_cells = {f["cell"] for _, f in used if isinstance(f, dict)} if fits else None
        groups = {"zeros": set(p["zero_initializers"]), "normal": set(p["normal_initializers"]),
                  "glorot_uniform": {p["default_initializer"]}}
        present = {g for g in p["required"] for name, _ in used if name in groups.get(g, {g})}
        normal_names = sorted({name for name, _ in used if name in groups["normal"]})
        evidence = _used_evidence(ctx, used)
        missing = [g for g in p["required"] if g not in present]
        fraction = len(present) / len(p["required"])
        uniform = [src for name, src in used if name == "random_uniform"]
        if "normal" in missing and uniform:
            first = uniform[0]
            place = where(ctx, first["cell"], first["line"]) if isinstance(first, dict) else fit_where(ctx, first)
            others = [m for m in missing if m != "normal"]
            missing_text = f"Faltan además: {names([_SPANISH[m] for m in others])}." if others else ""
            return self.verdict(ctx, "fail", "fail_uniform_as_normal", fraction=fraction, evidence=evidence,
                                values={"where": place, "value": "random_uniform", "missing_text": missing_text})
        if missing:
            return self.verdict(ctx, "fail", "fail_missing", fraction=fraction, evidence=evidence,
                                values={"value": names([_SPANISH.get(m, m) for m in missing])})
        if static:
            status, key = self.static_status(ctx, cells=crashed_cells)
            seen = [f for _, f in used if isinstance(f, dict)]
            return self.verdict(ctx, status, key, evidence=evidence,
                                values={"where": _static_where(ctx, seen), "value": names(normal_names)})
        return self.verdict(ctx, "pass", values={"value": names(normal_names)}, evidence=evidence)



class Ex3Optimizers(_ExerciseRule):
    id, exercise = "ex3_optimizers", "ex3"
    params = {"min_adaptive": "int", "adaptive": "list[str]", "credit_without_sgd": "number"}
    messages = ("pass", "pass_saved", "fail_no_sgd", "warn_few_adaptive", "fail_few_adaptive", "warn_static", "skip")

    def check(self, ctx: RuleContext) -> Verdict:
        if not ctx.looks_like_trabajo2:
            return self.not_trabajo2(ctx)
        p = self.spec(ctx).params
        fits = self.exercise_fits(ctx)
        static = self.use_static(ctx, fits)
        if static:
            used = [(f["name"], f) for f in ctx.static_facts("optimizers", "ex3") + _mentioned(ctx, "optimizer", "ex3")]
        else:
            used = [(signature(f)["optimizer"][0], f) for f in fits]
            if fits and all(name != "SGD" for name, _ in used):
                # SGD trained in exercises 1-2 is the baseline the adaptive ones are compared with.
                used += [("SGD", f) for f in ctx.fits("ex2") + ctx.fits("ex1")
                         if signature(f)["optimizer"][0] == "SGD"][:1]
            crashed = self.crashed(ctx, "optimizers", "optimizer")
            used += [(f["name"], f) for f in crashed]
            static = bool(crashed)
        crashed_cells = {f["cell"] for _, f in used if isinstance(f, dict)} if fits else None
        found = list(dict.fromkeys(name for name, _ in used if name))
        adaptive = [n for n in found if n in p["adaptive"]]
        evidence = _used_evidence(ctx, used)
        values = {"value": names(found) or "ninguno", "n_adaptive": len(adaptive), "adaptive": names(adaptive)}
        if "SGD" not in found:
            credit = p["credit_without_sgd"] if len(adaptive) >= p["min_adaptive"] else 0.0
            return self.verdict(ctx, "fail", "fail_no_sgd", values=values, evidence=evidence, fraction=credit)
        if not adaptive:
            return self.verdict(ctx, "fail", "fail_few_adaptive", values=values, evidence=evidence)
        if static and len(adaptive) >= p["min_adaptive"]:
            status, key = self.static_status(ctx, cells=crashed_cells)
            return self.verdict(ctx, status, key, evidence=evidence,
                                values={**values, "where": _static_where(ctx, [f for _, f in used if isinstance(f, dict)])})
        if len(adaptive) < p["min_adaptive"]:
            return self.verdict(ctx, "warn", "warn_few_adaptive", values=values, evidence=evidence)
        return self.verdict(ctx, "pass", values=values, evidence=evidence)


class Ex4Regularization(_ExerciseRule):
    id, exercise = "ex4_regularization", "ex4"
    messages = ("pass", "pass_saved", "fail_none", "fail_no_final", "warn_static", "skip")

    def check(self, ctx: RuleContext) -> Verdict:
        if not ctx.looks_like_trabajo2:
            return self.not_trabajo2(ctx)
        final = ctx.final_fit()
        if final is None:
            facts = ctx.static_facts("regularization", "ex4") if ctx.execution_incomplete or not ctx.trace.fits else []
            if facts:
                kinds = names(sorted({f["kind"] for f in facts}))
                status, key = self.static_status(ctx)
                return self.verdict(ctx, status, key, evidence=_static_evidence(ctx, facts),
                                    values={"where": _static_where(ctx, facts), "value": kinds})
            return self.verdict(ctx, "fail", "fail_no_final")
        techniques = regularization_of(final)
        if not techniques:
            return self.verdict(ctx, "fail", "fail_none", values={"where": fit_where(ctx, final)},
                                evidence=[fit_evidence(ctx, final)])
        return self.verdict(ctx, "pass", values={"value": names(techniques), "where": fit_where(ctx, final)},
                            evidence=[fit_evidence(ctx, final, techniques=techniques)])


class Ex42TestEvaluation(_ExerciseRule):
    id, exercise = "ex42_test_evaluation", "ex4"
    messages = ("pass", "pass_saved", "warn_repeated", "fail_not_evaluated", "fail_no_final", "warn_static", "skip")

    def check(self, ctx: RuleContext) -> Verdict:
        if not ctx.looks_like_trabajo2:
            return self.not_trabajo2(ctx)
        final = ctx.attribution.final_model_id
        if final is None:
            facts = [e for e in ctx.static_facts("evals", "ex4") if any(mentions_test(a) for a in e["args"])]
            if facts and (ctx.execution_incomplete or not ctx.trace.fits):
                status, key = self.static_status(ctx, ("test_accuracy",))
                return self.verdict(ctx, status, key, values={"where": _static_where(ctx, facts)},
                                    evidence=_static_evidence(ctx, facts))
            return self.verdict(ctx, "fail", "fail_no_final")
        evals = ctx.test_evals(final)
        counted = [e for e in evals if e.kind == "evaluate"] or evals
        if not counted:
            return self.verdict(ctx, "fail", "fail_not_evaluated")
        ev = [evidence_at(ctx, e.location.cell, e.location.line) for e in counted[:MAX_EVIDENCE]]
        place = where(ctx, counted[0].location.cell, counted[0].location.line)
        if len(counted) > 1:
            return self.verdict(ctx, "warn", "warn_repeated", values={"value": len(counted), "where": place}, evidence=ev)
        return self.verdict(ctx, "pass", values={"where": place}, evidence=ev)

