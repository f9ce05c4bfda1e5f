"""The validation-test gap compares the same weights: the epoch whose weights were tested is recorded."""

from __future__ import annotations

import keras
import numpy as np

from grader.results import RunResult
from grader.retrain.replay import _tested_weights
from tests.builders import final_run, notebook, run_rules, standard_cells, standard_trace


def _early_stopping_after(val_loss: list[float], restore: bool) -> keras.callbacks.EarlyStopping:
    """A real EarlyStopping driven through the epochs as the trainer drives it."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    cb = keras.callbacks.EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=restore)
    cb.set_model(model)
    cb.on_train_begin()
    for epoch, loss in enumerate(val_loss):
        model.set_weights([w + 1 for w in model.get_weights()])  # the weights change every epoch
        cb.on_epoch_end(epoch, {"val_loss": loss})
    cb.on_train_end()
    return cb


def _run(val_acc: list[float]) -> RunResult:
    return RunResult(run_id="m1", model_id=1, fit_indices=[0], history={"val_accuracy": val_acc})


def test_restored_best_epoch_is_the_tested_one() -> None:
    run = _run([0.70, 0.86, 0.80, 0.69])
    _tested_weights(run, [_early_stopping_after([0.9, 0.4, 0.6, 0.95], restore=True)], offset=0)
    assert (run.tested_epoch, run.tested_val_accuracy, run.restored_best) == (2, 0.86, True)


def test_without_restore_the_last_epoch_is_tested() -> None:
    run = _run([0.70, 0.855, 0.80, 0.685])
    _tested_weights(run, [_early_stopping_after([0.9, 0.4, 0.6, 0.95], restore=False)], offset=0)
    assert (run.tested_epoch, run.tested_val_accuracy, run.restored_best) == (4, 0.685, False)


def test_offset_counts_the_epochs_of_earlier_fits_of_the_same_model() -> None:
    run = _run([0.5, 0.6, 0.7, 0.9, 0.8])  # 2 epochs of an earlier fit, then 3 with EarlyStopping
    _tested_weights(run, [_early_stopping_after([0.5, 0.3, 0.4], restore=True)], offset=2)
    assert run.tested_epoch == 4 and np.isclose(run.tested_val_accuracy, 0.9)


def test_the_message_compares_the_weights_that_were_tested() -> None:
    """Best epoch 85.5% but the weights at the end (68.5%) were tested (68.4%): the gap is 0.1 points."""
    run = final_run(val=0.855, test=0.684)
    run.tested_epoch, run.tested_val_accuracy, run.restored_best = 20, 0.685, False
    verdicts, _ = run_rules(notebook(standard_cells()), standard_trace(), [run])
    message = verdicts["final_val_accuracy"].message
    assert "0.1 puntos porcentuales" in message and "última época, la 20" in message, message
    assert "17" not in message
