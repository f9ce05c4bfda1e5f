"""The trusted retrain's hard limits: a child process with its own memory limit, killed at the time
budget even inside one long epoch. Real Keras training on real Fashion-MNIST rows."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import pytest

from grader.options import Budget
from grader.retrain.child import GRACE_S, retrain_in_child
from tests.builders import recorded_fit, trace_of, train_rows

pytestmark = pytest.mark.slow


def _child(tmp_path: Path, trace, budget: Budget, final: int = 1):
    path = tmp_path / "trace.json"
    trace.save(path)
    t = time.monotonic()
    runs = retrain_in_child(path, tmp_path / "arrays", tmp_path, final_model_id=final, budget=budget,
                            cache_dir=None, seed=1234)
    return {r.run_id: r for r in runs}, time.monotonic() - t


def test_one_long_epoch_is_killed_at_the_budget_and_finished_runs_are_kept(tmp_path: Path, fmnist) -> None:
    (tmp_path / "arrays").mkdir()
    x, y = train_rows(fmnist, 3000)
    xl, yl = train_rows(fmnist, 40000)
    # One epoch of two 8192-unit layers at batch 32: ~18 TFLOP, about 90 s at this machine's best sgemm
    # rate (~190 GFLOP/s), so far longer than the budget even when the machine is idle. (One 8192-unit
    # layer, ~2.5 TFLOP for both epochs, finished inside the 20 s budget on a quiet machine.)
    wide = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(8192, activation="relu"),
                             keras.layers.Dense(8192, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    trace = trace_of(recorded_fit(tmp_path / "arrays", x, y, model_id=1, index=0),
                     recorded_fit(tmp_path / "arrays", xl, yl, model_id=2, index=1, model=wide,
                              epochs=2, batch_size=32))
    budget = Budget(time_budget_s=20)
    runs, seconds = _child(tmp_path, trace, budget)
    print(f"retrain child: {seconds:.1f} s in all; long run: {runs['m2'].reason}")
    assert runs["m1"].status == "ok" and runs["m1"].epochs_run == 1 and runs["m1"].test_accuracy
    # Stopped inside its first epoch: by the child's own deadline between chunks of steps (the trainer
    # checks it every 50 steps), or, when one chunk cannot be interrupted, killed by the parent.
    assert runs["m2"].status == "budget" and runs["m2"].epochs_run == 0, runs["m2"].reason
    if "stopped after" in runs["m2"].reason:
        stopped = float(runs["m2"].reason.split("stopped after ")[1].split(" s")[0])
        assert stopped <= budget.time_budget_s + GRACE_S + 1
    else:
        assert "time budget used up during fit 1" in runs["m2"].reason and "of 2 epochs" in runs["m2"].reason


def test_full_batch_fit_hits_the_childs_memory_limit_not_the_worker(tmp_path: Path, fmnist) -> None:
    (tmp_path / "arrays").mkdir()
    x, y = train_rows(fmnist, 3000)
    xl, yl = train_rows(fmnist, 20000)
    wide = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(8192, activation="relu"),
                             keras.layers.Dense(8192, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    # One batch of all 16000 training rows through two 8192-unit layers: gigabytes of activations.
    trace = trace_of(recorded_fit(tmp_path / "arrays", x, y, model_id=1, index=0),
                     recorded_fit(tmp_path / "arrays", xl, yl, model_id=2, index=1, model=wide, batch_size=16000))
    runs, seconds = _child(tmp_path, trace, Budget(time_budget_s=120, memory_mb=2500))
    print(f"retrain child: {seconds:.1f} s; full-batch run: {runs['m2'].status}: {runs['m2'].reason}")
    assert runs["m1"].status == "ok"
    assert runs["m2"].status == "error" and runs["m2"].epochs_run == 0
    assert any(word in runs["m2"].reason for word in ("ResourceExhausted", "MemoryError", "memory limit")), runs["m2"]
    assert np.isfinite(runs["m1"].best_val_accuracy)
