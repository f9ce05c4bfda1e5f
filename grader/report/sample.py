"""Realistic GradeResults for previews and tests of the reports (no training involved).

The curves follow the shapes real Fashion-MNIST runs have (sigmoid learns slower than ReLU, zeros
never leaves 10%, SGD lags Adam/RMSprop, the final model approaches 90%); the texts are the kind of
Spanish feedback the rubric produces. `python -m grader.report.sample OUT` renders a preview.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from grader.results import Evidence, ExerciseScore, GradeResult, RunResult, Verdict

HOSTILE = "<script>alert(1)</script> {{ 7*7 }} </pre><b>x</b>"


def curve(start: float, end: float, epochs: int, speed: float = 0.6, wobble: float = 0.0) -> list[float]:
    """A saturating learning curve from start to end over `epochs` points."""
    return [
        round(end + (start - end) * math.exp(-speed * e) + wobble * math.sin(3 * e) / (e + 1), 4)
        for e in range(epochs)
    ]


def history(acc_end: float, val_end: float, epochs: int, speed: float = 0.6, keys: str = "new") -> dict:
    acc, val_acc = ("accuracy", "val_accuracy") if keys == "new" else ("acc", "val_acc")
    return {
        "loss": curve(1.6, 2.3 * (1 - acc_end) + 0.05, epochs, speed),
        acc: curve(0.35, acc_end, epochs, speed),
        "val_loss": curve(1.4, 2.3 * (1 - val_end) + 0.1, epochs, speed, wobble=0.02),
        val_acc: curve(0.45, val_end, epochs, speed, wobble=0.01),
    }


def run(run_id: str, exercise: str, label: str, hist: dict, *, is_final: bool = False, **kw) -> RunResult:
    val = hist.get("val_accuracy") or hist.get("val_acc") or []
    epochs = len(hist.get("loss", []))
    return RunResult(
        run_id=run_id,
        model_id=int(run_id.lstrip("m") or 0),
        fit_indices=[int(run_id.lstrip("m") or 0)],
        exercise=exercise,
        label=label,
        is_final=is_final,
        history=hist,
        best_val_accuracy=max(val) if val else None,
        last_val_accuracy=val[-1] if val else None,
        epochs_run=epochs,
        epochs_requested=kw.pop("epochs_requested", epochs),
        seed=20251,
        cache_key=f"sha256:{run_id}",
        **kw,
    )


def sample_result(student: str = "garcia_lopez_maria", *, excerpt: str | None = None) -> GradeResult:
    """A hand-in with passes, failures, warnings and a skip in every exercise; 7.5 / 10."""
    ex = excerpt or "history = model.fit(x_train, y_train, epochs=10,\n                    validation_data=(x_test, y_test))"
    runs = [
        run("m1", "ex1", "sigmoid", history(0.86, 0.85, 10, speed=0.35)),
        run("m2", "ex1", "ReLU", history(0.91, 0.885, 10, speed=0.8), cached=True),
        run("m3", "ex2", "zeros", {k: [0.1 if "acc" in k else 2.3026] * 10 for k in
                                   ("loss", "accuracy", "val_loss", "val_accuracy")}),
        run("m4", "ex2", "random_normal", history(0.88, 0.865, 10, speed=0.5)),
        run("m5", "ex2", "glorot_uniform", history(0.91, 0.885, 10, speed=0.8)),
        run("m6", "ex3", "SGD", history(0.84, 0.835, 10, speed=0.3, keys="old")),
        run("m7", "ex3", "Adam", history(0.915, 0.887, 10, speed=0.9)),
        run("m8", "ex3", "RMSprop", history(0.905, 0.88, 10, speed=0.85)),
        run("m9", "ex4", "final", history(0.93, 0.897, 20, speed=0.4), is_final=True, test_accuracy=0.8912),
        RunResult("m10", 10, [10, 11], "ex3", "Nadam", status="budget", cut="epochs",
                  reason="epochs capped at 60 (the student asked for 200)", epochs_requested=60),
    ]
    rules = [
        Verdict("split_20", "general", "fail", -0.75, 0.0,
                "En la celda 12 se usa el conjunto de test como validación (validation_data=(x_test, y_test)). "
                "Usa validation_split=0.2 o separa un 20 % de x_train.",
                evidence=[Evidence(cell=11, line=2, excerpt=ex, values={"validation": "x_test", "rows_test": 10000})]),
        Verdict("new_model_per_fit", "general", "pass", 0.0, 0.0,
                "Cada entrenamiento construye un modelo nuevo."),
        Verdict("ex1_compare", "ex1", "pass", 1.5, 1.5, "Se comparan sigmoid y ReLU con la misma arquitectura.",
                evidence=[Evidence(cell=6, line=3, excerpt="model.add(Dense(128, activation='relu'))")]),
        Verdict("ex1_analysis", "ex1", "warn", 0.5, 1.0,
                "La explicación no menciona la saturación de la sigmoide ni el desvanecimiento del gradiente.",
                severity="warning", evidence=[Evidence(cell=8)]),
        Verdict("ex2_random_normal", "ex2", "fail", 0.0, 1.0,
                "El apartado (b) dice «normal» pero la celda 15 usa kernel_initializer='random_uniform', "
                "que no es una variable aleatoria normal. Usa RandomNormal.",
                evidence=[Evidence(cell=14, line=4, excerpt="Dense(64, kernel_initializer='random_uniform')")]),
        Verdict("ex2_zeros", "ex2", "pass", 1.5, 1.5, "La inicialización a ceros está bien planteada."),
        Verdict("ex3_sgd", "ex3", "pass", 1.5, 1.5, "Se compara SGD con Adam y RMSprop."),
        Verdict("ex3_analysis", "ex3", "warn", 0.75, 1.0,
                "El análisis no explica por qué SGD converge más despacio que Adam con la misma tasa.",
                severity="warning", evidence=[Evidence(cell=19)]),
        Verdict("ex3_extra", "ex3", "skip", 0.0, 0.0, "No hay optimizadores adicionales que comprobar."),
        Verdict("ex4_target", "ex4", "pass", 1.5, 1.5, "La red final llega a un 89.7 % de validación."),
        Verdict("reported_vs_reproduced", "ex4", "warn", 0.5, 0.5,
                "La precisión que reportas para el modelo final (93.1 %) no coincide con la reproducida (89.7 %).",
                severity="warning",
                evidence=[Evidence(cell=22, line=None, excerpt="val_accuracy: 0.9310",
                                   values={"reported": 0.931, "reproduced": 0.897, "text": "val_accuracy: 0.9310"})]),
        Verdict("test_once", "ex4", "pass", 0.5, 0.5, "El conjunto de test se evalúa una sola vez, al final."),
    ]
    # As the rubric scores: 2.5 per exercise, the general protocol rules only deduct.
    exercises = [
        ExerciseScore("ex1", "1. Unidades de activación", 2.0, 2.5),
        ExerciseScore("ex2", "2. Inicialización de parámetros", 1.5, 2.5),
        ExerciseScore("ex3", "3. Optimizadores", 2.25, 2.5),
        ExerciseScore("ex4", "4. Regularización y red final", 2.5, 2.5),
        ExerciseScore("general", "Aspectos generales (protocolo, ejecución y análisis)", -0.75, 0.0),
    ]
    return GradeResult(
        student=student, score=7.5, max_score=10.0, rules=rules, runs=runs, exercises=exercises,
        final={"val_accuracy": 0.897, "test_accuracy": 0.8912, "epochs": 20},
        errors=[{"stage": "cell", "code": "NameError", "message": "name 'plot_acc' is not defined",
                 "cell": 9, "line": 1, "traceback": "NameError: name 'plot_acc' is not defined"}],
        meta={"grader_version": "0.1.0", "rubric": "Trabajo 2 (2024-25)", "rubric_digest": "ab12" * 16,
              "budget": "standard", "seed": 20251, "kind": "ipynb", "files": ["trabajo2.ipynb"],
              "notes": [], "trace_status": "ok",
              "versions": {"python": "3.11.9", "tensorflow-cpu": "2.21.0", "keras": "3.15.1", "numpy": "2.4.6"},
              "timings": {"load": 0.08, "capture": 41.3, "retrain": 122.7, "rules": 0.02}},
    )


def broken_result(student: str = "perez_ruiz_juan") -> GradeResult:
    """A hand-in that could not be loaded: no runs, every rule skipped, the load error up front."""
    rules = [Verdict(rid, ex, "skip", 0.0, mx, "No se pudo evaluar: la entrega no se pudo cargar.")
             for rid, ex, mx in (("split_20", "general", 0.0), ("ex1_compare", "ex1", 1.5), ("ex4_target", "ex4", 1.5))]
    return GradeResult(
        student=student, score=0.0, max_score=10.0, rules=rules,
        errors=[{"stage": "load", "code": "invalid_json",
                 "message": "El cuaderno no es un JSON válido (línea 1, columna 1).", "file": "trabajo2.ipynb"}],
        meta={"seed": 20251, "budget": "standard", "trace_status": "not_run"},
    )


if __name__ == "__main__":  # preview: python -m grader.report.sample OUT
    from grader.report import render_report, render_summary, write_exports

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "report-preview")
    results = [sample_result(), sample_result("hostile" + HOSTILE, excerpt=HOSTILE), broken_result()]
    for r in results:
        print(render_report(r, out))
    print(render_summary(results, out), write_exports(results, out))
