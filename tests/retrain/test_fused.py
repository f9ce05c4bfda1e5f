"""Fused training (grader.retrain.fused) against training each model alone, on real Fashion-MNIST rows."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest

from grader.capture.trace import CallbackRecord, CompileRecord
from grader.options import Budget
from grader.retrain.fused import fusion_signature
from grader.retrain.replay import retrain_trace
from tests.builders import N, recorded_fit, trace_of, train_rows

FUSED_NOTE = "trained in one graph"


@pytest.fixture
def data(fmnist):
    return fmnist


@pytest.fixture
def arrays(tmp_path) -> Path:
    folder = tmp_path / "arrays"
    folder.mkdir()
    return folder


def compiled(name: str, **kw) -> CompileRecord:
    opt = getattr(keras.optimizers, name)(**kw)
    return CompileRecord({"class_name": name, "config": opt.get_config()}, "sparse_categorical_crossentropy",
                         ["accuracy"])


def mlp(activation="relu", initializer="glorot_uniform", rate=0.0, l2=None, hidden=(64, 32)) -> keras.Model:
    """The homework's shape: Flatten -> Dense ... -> Dense 10 softmax, with what students vary."""
    layers = [keras.Input((28, 28)), keras.layers.Flatten()]
    for units in hidden:
        layers.append(keras.layers.Dense(units, activation=activation, kernel_initializer=initializer,
                                         kernel_regularizer=keras.regularizers.l2(l2) if l2 else None))
        layers.append(keras.layers.Dropout(rate))
    layers.append(keras.layers.Dense(10, activation="softmax", kernel_initializer=initializer))
    return keras.Sequential(layers)


def comparison_fits(arrays, x, y, epochs=3):
    """Five models of one shape as a hand-in trains them (ex1-ex4), and one of another shape."""
    variants = [
        (mlp("sigmoid"), compiled("Adam")),
        (mlp("relu", "zeros"), compiled("Adam")),
        (mlp("relu", "random_normal", rate=0.2), compiled("SGD", learning_rate=0.05, momentum=0.9)),
        (mlp("relu", l2=1e-3), compiled("RMSprop")),
        (mlp("tanh", rate=0.5), compiled("SGD", learning_rate=0.1)),
        (mlp(hidden=(48, 32)), compiled("Adam")),  # another shape: trains alone
    ]
    return [recorded_fit(arrays, x, y, model_id=i + 1, index=i, model=model, compile=comp, epochs=epochs, batch_size=128)
            for i, (model, comp) in enumerate(variants)]


def test_fused_runs_match_training_each_alone(data, arrays, tmp_path):
    x, y = train_rows(data)
    fits = comparison_fits(arrays, x, y)
    together = retrain_trace(trace_of(*fits), arrays, final_model_id=None, data=data, cache_dir=tmp_path / "c1")
    alone = [retrain_trace(trace_of(fit), arrays, final_model_id=None, data=data)[0] for fit in fits]
    fused = [any(FUSED_NOTE in note for note in run.notes) for run in together]
    assert fused == [True] * 5 + [False]
    for t, a in zip(together, alone):
        assert t.status == a.status == "ok" and t.epochs_run == a.epochs_run == 3
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert t.history[key][0] == pytest.approx(a.history[key][0], abs=1e-4), (t.run_id, key)
        assert abs(t.last_val_accuracy - a.last_val_accuracy) <= 0.005, t.run_id
        assert t.history == a.history, t.run_id  # in fact bit for bit: the same ops in the same order
    # The models really differ (activations, initialisers, optimizers): fusing did not mix them up.
    assert len({round(r.history["loss"][0], 4) for r in together[:5]}) == 5
    # Fused results are cached per run like any other: a second grading trains nothing.
    again = retrain_trace(trace_of(*fits), arrays, final_model_id=None, data=data, cache_dir=tmp_path / "c1")
    assert all(r.cached for r in again)
    assert [r.history for r in again] == [r.history for r in together]


def test_early_stopping_acts_on_each_fused_model_alone(data, arrays):
    x, y = train_rows(data, N)
    # min_delta 1.0 can never be met after the first epoch: this model stops after 2 of 4 epochs.
    stop = CallbackRecord("EarlyStopping", {"monitor": "val_accuracy", "patience": 1, "min_delta": 1.0,
                                            "restore_best_weights": True})
    fits = [recorded_fit(arrays, x, y, model_id=1, index=0, model=mlp(), compile=compiled("Adam"), epochs=4,
                     batch_size=128, callbacks=[stop]),
            recorded_fit(arrays, x, y, model_id=2, index=1, model=mlp("sigmoid"), compile=compiled("Adam"), epochs=4,
                     batch_size=128),
            recorded_fit(arrays, x, y, model_id=3, index=2, model=mlp("tanh"), compile=compiled("SGD"), epochs=3,
                     batch_size=128)]
    together = retrain_trace(trace_of(*fits), arrays, final_model_id=None, data=data)
    alone = [retrain_trace(trace_of(fit), arrays, final_model_id=None, data=data)[0] for fit in fits]
    assert all(FUSED_NOTE in " ".join(r.notes) for r in together)
    assert [r.epochs_run for r in together] == [r.epochs_run for r in alone] == [2, 4, 3]
    for t, a in zip(together, alone):
        assert t.history["val_accuracy"] == pytest.approx(a.history["val_accuracy"], abs=0.005)


def test_what_is_not_fused(data, arrays):
    x, y = train_rows(data, 600)
    plain = recorded_fit(arrays, x, y, model=mlp(), compile=compiled("Adam"), batch_size=128)
    assert fusion_signature([plain], 32) is not None
    assert fusion_signature([plain, plain], 32) is None  # consecutive fits of one model replay alone
    conv = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                             keras.layers.Dense(10, activation="softmax")])
    assert fusion_signature([recorded_fit(arrays, x[..., None], y, model=conv)], 32) is None
    other_batch = recorded_fit(arrays, x, y, model=mlp(), compile=compiled("Adam"), batch_size=64)
    other_data = recorded_fit(arrays, x[:500], y[:500], model=mlp(), compile=compiled("Adam"), batch_size=128)
    wider = recorded_fit(arrays, x, y, model=mlp(hidden=(65, 32)), compile=compiled("Adam"), batch_size=128)
    signatures = {fusion_signature([f], 32) for f in (plain, other_batch, other_data, wider)}
    assert len(signatures) == 4
    # What students vary between the compared models does not split a group.
    varied = recorded_fit(arrays, x, y, model=mlp("sigmoid", "zeros", rate=0.3, l2=0.01), compile=compiled("SGD"),
                      batch_size=128)
    assert fusion_signature([varied], 32) == fusion_signature([plain], 32)


def test_deadline_and_progress_reach_every_fused_model(data):
    import time

    import numpy as np

    from grader.retrain.fused import FusedTrainer
    from grader.retrain.replay import _configure_tensorflow

    _configure_tensorflow()
    x, y = train_rows(data, 2000)
    models = []
    for activation in ("relu", "sigmoid"):
        keras.utils.set_random_seed(1)
        models.append(mlp(activation))
        models[-1].compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    ticks: list[list[float]] = [[], []]
    histories, cut = FusedTrainer(models, 16).fit(
        (x[:1600], y[:1600]), (x[1600:], y[1600:]), epochs=[3, 2], shuffle=True, callbacks=[[], []],
        rng=np.random.default_rng(1), deadline=time.monotonic(), progress=[t.append for t in ticks])
    assert cut == [True, True] and [h["loss"] for h in histories] == [[], []]
    assert ticks == [[0.5], [0.5]]  # both bars moved with the one chunk the group ran


def test_a_group_the_fused_path_cannot_train_falls_back_to_training_alone(data, arrays):
    x, y = train_rows(data, 600)
    fits = [recorded_fit(arrays, x, y, model_id=i + 1, index=i, model=mlp(act), compile=compiled("Adam"), batch_size=128)
            for i, act in enumerate(("relu", "sigmoid"))]
    (arrays / f"{fits[0].x.digest}.npy").unlink()  # the capture lost the training array
    runs = retrain_trace(trace_of(*fits), arrays, final_model_id=None, data=data)
    assert [r.status for r in runs] == ["not_reproducible"] * 2  # what training alone says, no crash
    assert all(r.notes[0].startswith("not trained in one graph (NotReproducible") for r in runs)


def test_fused_runs_come_back_from_the_retrain_child(data, arrays, tmp_path):
    """The batch retrains in a child process (grader.retrain.child): models trained together must be
    streamed back like the others, not reported as lost when the child ends."""
    from grader.retrain.child import retrain_in_child

    x, y = train_rows(data, 1500)
    fits = comparison_fits(arrays, x, y, epochs=1)[:3]  # three of one shape: one fused group
    trace_of(*fits).save(tmp_path / "trace.json")
    runs = retrain_in_child(tmp_path / "trace.json", arrays, tmp_path, final_model_id=None, budget=Budget(),
                            cache_dir=None, seed=1234)
    assert [(r.run_id, r.status, r.epochs_run) for r in runs] == [("m1", "ok", 1), ("m2", "ok", 1), ("m3", "ok", 1)]
    assert all("trained in one graph" in " ".join(r.notes) for r in runs), [r.notes for r in runs]
