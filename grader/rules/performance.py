"""How good the final network is, as the grader reproduced it, and whether the notebook's printed
numbers agree with that reproduction."""

from __future__ import annotations

from grader.capture.trace import FitRecord
from grader.results import RunResult, Verdict
from grader.rules.base import BaseRule, RuleContext, evidence_at, fit_evidence, fit_where, where


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def shortened(run: RunResult, fit: FitRecord | None) -> bool:
    """The grader trained fewer epochs than the student asked for (quick mode, budget); stopping
    early by the student's own EarlyStopping is not shortening."""
    return fit is not None and 0 < run.epochs_requested < fit.epochs


def _val(run: RunResult) -> float | None:
    # The peak of the validation curve: what students read off their plots when they tune.
    return run.best_val_accuracy if run.best_val_accuracy is not None else run.last_val_accuracy


def _saved_val(ctx: RuleContext) -> str:
    """What the notebook's saved outputs of exercise 4 show, for the instructor reviewing by hand."""
    cells = {c for c, ex in ctx.cell_exercise.items() if ex == "ex4"}
    shown = [r["value"] for r in ctx.reported if r["cell"] in cells and r["metric"] == "val_accuracy"]
    return f" (la salida guardada muestra hasta {pct(max(shown))} en validación)" if shown else ""


def _gap(run: RunResult) -> str:
    """Validation minus test accuracy of the SAME weights, saying which epoch's weights they are."""
    test = run.test_accuracy
    if test is None:
        return "—"
    if run.tested_val_accuracy is None or run.tested_epoch is None:
        return f"{(_val(run) - test) * 100:.1f} puntos porcentuales"
    weights = (f"pesos de la época {run.tested_epoch}, la mejor en validación, restaurados por EarlyStopping"
               if run.restored_best else f"pesos de la última época, la {run.tested_epoch}")
    return (f"{(run.tested_val_accuracy - test) * 100:.1f} puntos porcentuales "
            f"({pct(run.tested_val_accuracy)} en validación frente a {pct(test)} en test, {weights})")


class FinalValAccuracy(BaseRule):
    id = "final_val_accuracy"
    params = {"full_at": "number", "partial_from": "number", "quick_epochs": "int", "reasons": "dict[str,str]"}
    messages = ("pass", "warn", "fail", "fail_not_reproducible", "skip")

    def check(self, ctx: RuleContext) -> Verdict:
        if not ctx.looks_like_trabajo2:
            return self.not_trabajo2(ctx)
        p = self.spec(ctx).params
        reasons = p["reasons"]
        if ctx.attribution.final_model_id is None:
            if ctx.execution_incomplete or not ctx.trace.fits:
                return self.skip_because(ctx, reasons["not_executed"] + _saved_val(ctx))
            return self.skip_because(ctx, reasons["no_final"])
        run = ctx.final_run()
        if run is None:
            return self.skip_because(ctx, reasons["not_run"])
        fit = ctx.final_fit()
        place = fit_where(ctx, fit) if fit else "celda desconocida"
        evidence = [fit_evidence(ctx, fit)] if fit else []
        if run.status == "budget":
            return self.skip_because(ctx, reasons["budget"])
        if run.status != "ok" or _val(run) is None:
            text = reasons.get(run.status, reasons["error"])
            return self.verdict(ctx, "fail", "fail_not_reproducible", values={"where": place, "reason": text},
                                evidence=evidence)
        val, test = _val(run), run.test_accuracy
        values = {
            "val": pct(val), "test": pct(test), "full_at": pct(p["full_at"]), "partial_from": pct(p["partial_from"]),
            "gap": _gap(run),
            "note": reasons["quick"].format(epochs=run.epochs_requested) if shortened(run, fit) else "",
        }
        for ev in evidence:
            ev.values.update(val_accuracy=val, test_accuracy=test, epochs=run.epochs_run)
        if val >= p["full_at"]:
            return self.verdict(ctx, "pass", values=values, evidence=evidence)
        if val < p["partial_from"]:
            return self.verdict(ctx, "fail", values=values, evidence=evidence)
        fraction = (val - p["partial_from"]) / (p["full_at"] - p["partial_from"])
        return self.verdict(ctx, "warn", values=values, evidence=evidence, fraction=fraction)


class ReportedVsReproduced(BaseRule):
    id = "reported_vs_reproduced"
    params = {"tolerance": "number"}
    messages = ("pass", "warn", "skip")

    def check(self, ctx: RuleContext) -> Verdict:
        if skipped := self.skip_unless_trabajo2(ctx):
            return skipped
        run, fit = ctx.final_run(), ctx.final_fit()
        if run is None or fit is None or run.status != "ok" or _val(run) is None:
            return self.skip(ctx, "no_final_run")
        if shortened(run, fit):
            return self.skip(ctx, "retrain_cut")
        tol = self.spec(ctx).params["tolerance"]
        test_cells = {e.location.cell for e in ctx.test_evals(fit.model_id)}
        pairs = [("val_accuracy", {fit.location.cell}, _val(run)), ("test_accuracy", test_cells, run.test_accuracy)]
        compared = []
        for metric, cells, reproduced in pairs:
            shown = [r for r in ctx.reported if r["metric"] == metric and r["cell"] in cells]
            if not shown or reproduced is None:
                continue
            top = max(shown, key=lambda r: r["value"])
            compared.append((top["value"] - reproduced, metric, top, reproduced))
        # A claim printed elsewhere after the final fit (read back from a history JSON or a saved
        # .keras the student wrote): compared with the best number the grader reproduced at all.
        best = max([v for r in ctx.runs if r.status == "ok" and (v := _val(r)) is not None]
                   + [run.test_accuracy or 0.0])
        seen = {fit.location.cell, *test_cells}
        later = [r for r in ctx.reported if r["metric"] in ("val_accuracy", "test_accuracy")
                 and r["cell"] not in seen and fit.location.cell is not None and r["cell"] > fit.location.cell]
        # ... unless the retrain shortened some run (quick mode, budget): its numbers are then lower.
        cut = any(shortened(r, f) for r in ctx.runs for f in ctx.trace.fits if f.index in r.fit_indices[-1:])
        if later and not cut:
            top = max(later, key=lambda r: r["value"])
            compared.append((top["value"] - best, top["metric"], top, best))
        if not compared:
            return self.skip(ctx, "no_saved_final")
        gap, metric, top, reproduced = max(compared, key=lambda c: c[0])
        values = {"reported": pct(top["value"]), "reproduced": pct(reproduced), "metric": metric,
                  "where": where(ctx, top["cell"])}
        evidence = [evidence_at(ctx, top["cell"], None, reported=top["value"], reproduced=reproduced, text=top["text"])]
        evidence[0].excerpt = top["text"]  # the saved output line, verbatim
        status = "warn" if gap > tol else "pass"
        return self.verdict(ctx, status, values=values, evidence=evidence)
