"""The quick budget bounds the whole self-check: epochs cut inside, progress per model, cuts said, no fail for it."""

from __future__ import annotations

import io
import time

import keras
import numpy as np
import pytest

from grader.options import Budget, GradeOptions
from grader.results import RunResult
from grader.retrain import trainer as trainer_module
from grader.retrain.progress import TerminalProgress, budget_cuts
from grader.retrain.replay import _configure_tensorflow
from grader.retrain.trainer import FastTrainer
from tests.builders import ROOT


def rows(fmnist, n):
    return (fmnist.x_train[:n] / 255.0).astype(np.float32), fmnist.y_train[:n]


def model() -> keras.Model:
    keras.utils.set_random_seed(3)
    m = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(32, activation="relu"),
                          keras.layers.Dropout(0.2), keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def test_chunked_epochs_give_the_same_numbers_and_move_the_progress(fmnist, monkeypatch):
    _configure_tensorflow()
    x, y = rows(fmnist, 2000)
    train, val = (x[:1600], y[:1600]), (x[1600:], y[1600:])
    ticks: list[float] = []
    chunked, _ = FastTrainer(model(), 16).fit(train, val, epochs=2, shuffle=True, callbacks=[],
                                              rng=np.random.default_rng(1), progress=ticks.append)
    assert ticks == pytest.approx([0.5, 1.0, 1.5, 2.0])  # 100 steps per epoch, 50 per graph call
    monkeypatch.setattr(trainer_module, "CHUNK_STEPS", 10_000)  # the whole epoch in one call
    whole, _ = FastTrainer(model(), 16).fit(train, val, epochs=2, shuffle=True, callbacks=[],
                                            rng=np.random.default_rng(1))
    assert chunked == whole


def test_deadline_cuts_inside_an_epoch(fmnist):
    _configure_tensorflow()
    x, y = rows(fmnist, 2000)
    ticks: list[float] = []
    history, cut = FastTrainer(model(), 16).fit((x[:1600], y[:1600]), (x[1600:], y[1600:]), epochs=3,
                                                shuffle=True, callbacks=[], rng=np.random.default_rng(1),
                                                deadline=time.monotonic(), progress=ticks.append)
    assert cut and ticks == [0.5] and history["loss"] == []  # stopped after the first 50 of 100 steps


def test_terminal_progress_names_each_model():
    stream = io.StringIO()
    bars = TerminalProgress(stream)
    bars.name_models({4: "m4 · Ej. 1 · ReLU"})
    run = RunResult(run_id="m4", model_id=4, fit_indices=[0])
    tick = bars.start(run, 3)
    tick(1.5)
    bars.finish(run)
    assert "Entrenando m4 · Ej. 1 · ReLU" in stream.getvalue() and "1.5/3 épocas" in stream.getvalue()


def test_quick_budget_is_what_is_left_of_the_check():
    quick = Budget(name="quick", check_s=180, report_reserve_s=15)
    assert quick.retrain_seconds(25) == 140
    assert quick.retrain_seconds(400) == 0
    assert Budget(name="full").retrain_seconds(400) == 1800  # the instructor's grade is not bounded by it
    assert Budget(name="quick", check_s=0).retrain_seconds(400) == 1800
    # The student's cells stop at the check's bound too; the instructor's grade only at the kernel's limits.
    assert quick.capture_seconds() == 180 and Budget(name="full").capture_seconds() is None
    assert Budget(name="quick", check_s=0).capture_seconds() is None


def test_budget_cuts_are_said_in_spanish():
    runs = [RunResult("m1", 1, [0], exercise="ex1", label="ReLU", status="budget", cut="time", epochs_requested=3,
                      reason="retrain time budget of 0 s used up"),
            RunResult("m2", 2, [1], label="final", status="budget", cut="time", epochs_run=4, epochs_requested=20,
                      reason="retrain time budget used up during fit 1 (after 4 of 20 epochs)"),
            RunResult("m3", 3, [2], exercise="ex3", label="Adam", epochs_run=2, epochs_requested=2, epochs_asked=10,
                      notes=["fit 2: 10 epochs shortened to 2 (quick budget)"])]
    # Said from the typed cut, whatever the English reason reads.
    capped = RunResult("m4", 4, [3], exercise="ex3", label="Nadam", status="budget", cut="epochs", epochs_run=60,
                       epochs_requested=60, reason="(any text)")
    assert budget_cuts([capped], "full", 42)[0] == "m4 · Ej. 3 · Nadam: épocas limitadas a 60 (máximo del corrector)"
    lines = budget_cuts(runs, "quick", 42)
    assert lines[0] == "m1 · Ej. 1 · ReLU: sin entrenar, no quedaba tiempo (42 s para reentrenar)"
    assert lines[1].startswith("m2 · red final: 4 de 20 épocas, se acabó el tiempo")
    assert lines[2] == "m3 · Ej. 3 · Adam: 2 de 10 épocas (presupuesto quick)"
    assert "no cuenta como fallo" in lines[-1]
    assert budget_cuts(runs[2:], "full", 42) == ["m3 · Ej. 3 · Adam: 2 de 10 épocas (presupuesto full)"]


@pytest.mark.kernel
def test_a_check_out_of_time_skips_what_it_could_not_verify(tmp_path, capsys):
    """A real hand-in whose check has no time left after capture: nothing is trained, nothing fails for it."""
    from grader.cli import print_checklist
    from grader.load import load_submission
    from grader.pipeline import grade_submission

    sub = load_submission(ROOT / "submissions" / "correct_full.ipynb")
    # The check's bound leaves the capture alone (it takes ~10 s) and the retrain nothing (the report's reserve).
    opts = GradeOptions(out_dir=tmp_path / "out", budget=Budget(name="quick", check_s=60, report_reserve_s=60),
                        pdf=False, cache_dir=tmp_path / "cache")
    result = grade_submission(sub, opts, progress=TerminalProgress())
    assert result.runs and all(r.status == "budget" and r.epochs_run == 0 for r in result.runs)
    verdicts = {v.id: v for v in result.rules}
    assert verdicts["final_val_accuracy"].status == "skip"
    assert "tiempo" in verdicts["final_val_accuracy"].message
    assert verdicts["reported_vs_reproduced"].status != "fail"
    # The protocol verdicts come from the capture and do not wait for training.
    assert verdicts["split_20"].status == "pass" and verdicts["new_model_per_fit"].status == "pass"
    cuts = result.meta["budget_cuts"]
    assert len(cuts) == len(result.runs) + 1 and "red final: sin entrenar" in " ".join(cuts)
    print_checklist(result, opts.out_dir)
    out = capsys.readouterr().out
    assert "Recortado por el presupuesto" in out and "no cuenta como fallo" in out
    html = (opts.out_dir / f"{result.student}.html").read_text(encoding="utf-8")
    assert "Recortado por el presupuesto" in html and "red final: sin entrenar" in html


@pytest.mark.kernel
def test_the_check_bound_also_stops_a_notebook_slow_outside_fit(tmp_path, capsys):
    """A real hand-in with a cell that runs for minutes outside `fit`: the check stops it at its bound,
    says where and why in Spanish, and nothing fails because of it."""
    import nbformat

    from grader.cli import print_checklist
    from grader.load import load_submission
    from grader.pipeline import grade_submission

    nb = nbformat.read(ROOT / "submissions" / "correct_full.ipynb", as_version=4)
    nb.cells.insert(10, nbformat.v4.new_code_cell("import time\ntime.sleep(600)  # un bucle lento fuera de fit"))
    path = tmp_path / "lento.ipynb"
    nbformat.write(nb, path)
    bound = 40
    opts = GradeOptions(out_dir=tmp_path / "out", budget=Budget(name="quick", check_s=bound), pdf=False,
                        cache_dir=tmp_path / "cache")
    started = time.monotonic()
    result = grade_submission(load_submission(path), opts)
    wall = time.monotonic() - started
    assert wall < bound + 20, wall  # the sleeping cell is not waited for (cell limit 120 s, total 900 s)
    assert result.meta["trace_status"] == "check_time"
    (stop,) = [e for e in result.errors if e.get("code") == "CheckTimeLimit"]
    assert stop["cell"] == 10 and "se acabó el tiempo de la comprobación rápida (40 s)" in stop["message"]
    verdicts = {v.id: v for v in result.rules}
    assert verdicts["cells_run"].status == "skip" and "--full" in verdicts["cells_run"].message
    assert not [v.id for v in result.rules if v.status == "fail"]  # the bound is never the student's fault
    cuts = result.meta["budget_cuts"]
    assert cuts[0].startswith("ejecución del cuaderno: detenida en celda 11, se acabó el tiempo de la comprobación")
    assert "no cuenta como fallo" in cuts[-1]
    print_checklist(result, opts.out_dir)
    out = capsys.readouterr().out
    assert "detenida en celda 11" in out and "✗" not in out
    # Exercise 1's second model never ran: judged from its code and saved output, as a crashed cell is.
    assert verdicts["ex1_activations"].status == "pass" and verdicts["ex1_activations"].key == "pass_saved"
