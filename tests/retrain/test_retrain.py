"""The trusted retrain on real Fashion-MNIST rows (subsampled) with real Keras training, 1-3 epochs."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from grader.capture.trace import CallbackRecord, CompileRecord, ModelRecord
from grader.data import RowIndex, load_fashion_mnist
from grader.options import Budget
from grader.retrain.fit_data import prepare_fit
from grader.retrain.replay import NotReproducible, rebuild_model, retrain_trace
from tests.builders import N, dense_model, record, recorded_fit, trace_of, train_rows


@pytest.fixture(scope="module")
def data():
    return load_fashion_mnist()


@pytest.fixture(scope="module")
def index(data):
    return RowIndex.from_dataset(data)


@pytest.fixture
def arrays(tmp_path) -> Path:
    folder = tmp_path / "arrays"
    folder.mkdir()
    return folder


# ------------------------------------------------------------------------------------------ data


def test_fit_with_test_rows_is_refused_before_training(data, arrays):
    x, y = train_rows(data, 2000)
    x = np.concatenate([x, (data.x_test[:50] / 255.0).astype(np.float32)])
    y = np.concatenate([y, data.y_test[:50]])
    (run,) = retrain_trace(trace_of(recorded_fit(arrays, x, y)), arrays, final_model_id=1, data=data)
    assert run.status == "not_reproducible"
    assert "test rows in training data" in run.reason and "50 of 2050" in run.reason
    assert run.epochs_run == 0 and run.history == {} and run.test_accuracy is None


def test_mandated_split_is_last_20_percent_of_own_array(data, arrays, index):
    x, y = train_rows(data)
    fd = prepare_fit(recorded_fit(arrays, x, y), arrays, data, index)
    assert (len(fd.x_train), len(fd.x_val)) == (2400, 600)
    np.testing.assert_array_equal(fd.x_val, x[2400:])
    np.testing.assert_array_equal(fd.y_val, y[2400:])
    # A manual 80/20 split passed as validation_data is rejoined, then split the same way.
    manual = prepare_fit(recorded_fit(arrays, x[:2400], y[:2400], validation_data=(x[2400:], y[2400:])),
                         arrays, data, index)
    np.testing.assert_array_equal(manual.x_val, x[2400:])
    assert len(manual.x_train) == 2400
    # Test rows used as "validation" are never joined to the training array.
    test_val = ((data.x_test[:500] / 255.0).astype(np.float32), data.y_test[:500])
    cheat = prepare_fit(recorded_fit(arrays, x, y, validation_data=test_val), arrays, data, index)
    assert (len(cheat.x_train), len(cheat.x_val)) == (2400, 600)
    assert index.match(np.concatenate([cheat.x_train, cheat.x_val])).summary()["test"] == 0


def test_forged_labels_are_an_error(data, arrays):
    x, y = train_rows(data, 1000)
    forged = y.copy()
    forged[:100] = (forged[:100] + 1) % 10
    (run,) = retrain_trace(trace_of(recorded_fit(arrays, x, forged)), arrays, final_model_id=None, data=data)
    assert run.status == "error" and "100 of 1000 labels" in run.reason


def test_one_hot_labels_and_flat_standardised_input(data, arrays):
    x, y = train_rows(data)
    flat = ((x.reshape(N, 784) - 0.3) / 0.35).astype(np.float32)
    onehot = keras.utils.to_categorical(y, 10).astype(np.float32)
    comp = CompileRecord({"class_name": "Adam", "config": keras.optimizers.Adam().get_config()},
                         "categorical_crossentropy", ["accuracy"])
    fit = recorded_fit(arrays, flat, onehot, model=dense_model(input_shape=(784,)), compile=comp, epochs=2)
    (run,) = retrain_trace(trace_of(fit), arrays, final_model_id=1, data=data)
    assert run.status == "ok", run.reason
    # The grader's own test set, standardised the same way, gives a sensible accuracy.
    assert run.best_val_accuracy > 0.7 and abs(run.test_accuracy - run.last_val_accuracy) < 0.06


# ---------------------------------------------------------------------------- determinism, cache


def test_same_inputs_give_identical_numbers(data, arrays):
    x, y = train_rows(data)
    trace = trace_of(recorded_fit(arrays, x, y, epochs=2, model=dense_model(kernel_regularizer="l2")))
    first = retrain_trace(trace, arrays, final_model_id=1, data=data)[0]
    second = retrain_trace(trace, arrays, final_model_id=1, data=data)[0]
    assert first.status == "ok" and first.epochs_run == 2
    assert first.history == second.history and first.test_accuracy == second.test_accuracy
    assert not first.cached and not second.cached


def test_cache_hit_returns_same_numbers_without_training(data, arrays, tmp_path):
    x, y = train_rows(data)
    trace = trace_of(recorded_fit(arrays, x, y, epochs=2))
    cache = tmp_path / "cache"
    first = retrain_trace(trace, arrays, final_model_id=1, cache_dir=cache, data=data)[0]
    started = time.monotonic()
    second = retrain_trace(trace, arrays, final_model_id=1, cache_dir=cache, data=data)[0]
    assert time.monotonic() - started < 0.5 and second.wall_s < first.wall_s / 5
    assert (first.cached, second.cached) == (False, True)
    assert second.history == first.history and second.test_accuracy == first.test_accuracy
    assert second.cache_key == first.cache_key
    # Another seed is another key; a corrupt entry is a miss and gets rewritten.
    other = retrain_trace(trace, arrays, final_model_id=1, cache_dir=cache, data=data, seed=7)[0]
    assert other.cache_key != first.cache_key and not other.cached
    (entry,) = cache.glob(f"*/{first.cache_key}.json")
    entry.write_text("{not json", encoding="utf-8")
    again = retrain_trace(trace, arrays, final_model_id=1, cache_dir=cache, data=data)[0]
    assert not again.cached and again.history == first.history
    assert json.loads(entry.read_text(encoding="utf-8"))["cache_key"] == first.cache_key


# ------------------------------------------------------------------------------------- allowlist


@keras.saving.register_keras_serializable(package="student")
class Doubler(keras.layers.Layer):
    def call(self, x):
        return 2 * x


@pytest.mark.parametrize("model, words", [
    (keras.Sequential([keras.Input((28, 28)), keras.layers.Lambda(lambda t: t * 2), keras.layers.Flatten(),
                       keras.layers.Dense(10, activation="softmax")]), "Lambda"),
    (keras.Sequential([keras.Input((28, 28)), Doubler(), keras.layers.Flatten(),
                       keras.layers.Dense(10, activation="softmax")]), r"\(Doubler\): class from module 'test_retrain', outside Keras' public modules"),
])
def test_allowlist_refuses_non_standard_layers(model, words):
    with pytest.raises(NotReproducible, match=words):
        rebuild_model(record(model, 1), (None, 28, 28))


def test_allowlist_refuses_markers_modules_and_unknown_optimizers(data, arrays):
    rec = record(dense_model(), 1)
    rec.config["config"]["layers"][2]["config"]["activation"] = {"unsupported": "function my_act"}
    with pytest.raises(NotReproducible, match="could not record"):
        rebuild_model(rec, (None, 28, 28))
    rec = record(dense_model(), 1)
    rec.config["config"]["layers"][2]["module"] = "os"
    with pytest.raises(NotReproducible, match="outside Keras"):
        rebuild_model(rec, (None, 28, 28))
    rec = record(dense_model(), 1)
    rec.config["config"]["layers"][2]["registered_name"] = "Custom>Dense"
    with pytest.raises(NotReproducible, match="custom registered class 'Custom>Dense'"):
        rebuild_model(rec, (None, 28, 28))
    x, y = train_rows(data, 1000)
    odd = CompileRecord({"class_name": "MyFancyOptimizer", "config": {}}, "sparse_categorical_crossentropy", [])
    (run,) = retrain_trace(trace_of(recorded_fit(arrays, x, y, compile=odd)), arrays, final_model_id=None, data=data)
    assert run.status == "not_reproducible" and "optimizer 'MyFancyOptimizer'" in run.reason
    model = rebuild_model(record(dense_model(kernel_initializer="zeros"), 1), (None, 28, 28))
    assert not np.any(model.layers[1].get_weights()[0])  # standard configs do rebuild, zeros included


def test_functional_and_unbuilt_models_rebuild_and_train(data, arrays):
    inputs = keras.Input((28, 28))
    hidden = keras.layers.Dense(32, activation="sigmoid")(keras.layers.Flatten()(inputs))
    functional = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(hidden))
    unbuilt = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    assert not unbuilt.built  # Keras builds it at the first fit; the grader from the data's shape
    rebuilt = rebuild_model(record(unbuilt, 2), (None, 28, 28))
    assert rebuilt.built and rebuilt.output_shape == (None, 10)
    x, y = train_rows(data, 1000)
    runs = retrain_trace(trace_of(recorded_fit(arrays, x, y, model=functional),
                                  recorded_fit(arrays, x, y, model_id=2, index=1, model=unbuilt)),
                         arrays, final_model_id=None, data=data)
    assert [(r.run_id, r.status, r.epochs_run) for r in runs] == [("m1", "ok", 1), ("m2", "ok", 1)]


# ------------------------------------------------------------------------ fit semantics, budget


def test_early_stopping_stops_and_restores_best_weights(data, arrays):
    x, y = train_rows(data)
    one_epoch = retrain_trace(trace_of(recorded_fit(arrays, x, y, epochs=1)), arrays, final_model_id=1, data=data)[0]
    # min_delta=1 makes every epoch after the first a non-improvement: patience 0 stops at epoch 2.
    stop = CallbackRecord("EarlyStopping", {"monitor": "val_accuracy", "patience": 0, "min_delta": 1.0,
                                            "restore_best_weights": True, "mode": "auto"})
    stopped = retrain_trace(trace_of(recorded_fit(arrays, x, y, epochs=6, callbacks=[stop])), arrays,
                            final_model_id=1, data=data)[0]
    assert stopped.status == "ok" and (stopped.epochs_run, stopped.epochs_requested) == (2, 6)
    assert stopped.history["val_accuracy"][0] == one_epoch.history["val_accuracy"][0]
    # Restored to the first epoch's weights: the test accuracy is the one-epoch model's.
    assert stopped.test_accuracy == one_epoch.test_accuracy
    noted = CallbackRecord("ModelCheckpoint", {"filepath": "/tmp/x.keras"})
    kept = retrain_trace(trace_of(recorded_fit(arrays, x, y, epochs=1, callbacks=[noted])), arrays,
                         final_model_id=None, data=data)[0]
    assert kept.status == "ok" and any("ModelCheckpoint ignored" in n for n in kept.notes)


def test_callbacks_from_probe_configs():
    from grader.retrain.allowlist import build_callbacks

    records = [CallbackRecord("EarlyStopping", {"monitor": "val_acc", "mode": "auto", "patience": 3,
                                                "best_weights": None, "monitor_op": None}),
               CallbackRecord("ReduceLROnPlateau", {"monitor": "val_loss", "factor": 0.5}),
               CallbackRecord("TensorBoard", {"log_dir": "/tmp/anything"})]
    (stop, plateau), notes = build_callbacks(records)
    assert (stop.monitor, stop.mode, stop.patience) == ("val_acc", "max", 3)  # Keras 2 name, maximised
    assert (plateau.mode, plateau.factor) == ("min", 0.5)
    assert notes == ["callback TensorBoard ignored (not replayed by the grader)"]


def test_consecutive_fits_continue_one_model(data, arrays):
    x, y = train_rows(data)
    model = dense_model()
    once = retrain_trace(trace_of(recorded_fit(arrays, x, y, model=model, epochs=2)), arrays,
                         final_model_id=None, data=data)[0]
    twice = retrain_trace(trace_of(recorded_fit(arrays, x, y, model=model, epochs=1),
                                   recorded_fit(arrays, x, y, model=model, epochs=1, index=1, prior=1)),
                          arrays, final_model_id=None, data=data)
    assert len(twice) == 1 and twice[0].fit_indices == [0, 1] and twice[0].epochs_run == 2
    # Continuing training (optimizer state and shuffles included) is exactly one longer fit.
    assert twice[0].history == once.history
    assert twice[0].history["val_accuracy"][1] > twice[0].history["val_accuracy"][0]


def test_test_accuracy_only_for_final_model_and_quick_budget_caps_others(data, arrays):
    x, y = train_rows(data)
    fits = [recorded_fit(arrays, x, y, model_id=1, index=0, epochs=3),
            recorded_fit(arrays, x, y, model_id=2, index=1, epochs=2, model=dense_model(16))]
    quick = Budget(name="quick", quick_epochs=1)
    first, final = retrain_trace(trace_of(*fits), arrays, final_model_id=2, budget=quick, data=data)
    assert first.test_accuracy is None and not first.is_final
    assert (first.epochs_run, first.epochs_requested) == (1, 1) and "quick budget" in first.notes[0]
    assert final.is_final and final.epochs_run == 2 and 0.5 < final.test_accuracy < 1.0
    capped = retrain_trace(trace_of(fits[0]), arrays, final_model_id=None, data=data,
                           budget=Budget(max_epochs=1))[0]
    assert capped.status == "budget" and capped.epochs_run == 1 and "capped at 1" in capped.reason
    assert capped.cut == "epochs"  # typed: the report, the bars and the cache read this, not the English reason
    late = retrain_trace(trace_of(*fits), arrays, final_model_id=2, data=data, budget=Budget(time_budget_s=0))
    assert [r.status for r in late] == ["budget", "budget"] and "time budget" in late[0].reason
    assert [r.cut for r in late] == ["time", "time"]
    # The final model trains first: a budget that runs out spends itself on it, not on the others.
    fits[1].epochs = 1  # the deadline is checked between epochs: one epoch cannot be cut short
    tight = retrain_trace(trace_of(*fits), arrays, final_model_id=2, data=data, budget=Budget(time_budget_s=0.2))
    assert [r.run_id for r in tight] == ["m1", "m2"]
    assert tight[1].status == "ok" and tight[1].test_accuracy is not None and tight[0].status == "budget"
    assert (tight[1].cut, tight[0].cut) == ("", "time")


def test_default_batch_size_and_plain_json_results(data, arrays):
    x, y = train_rows(data, 1000)
    (run,) = retrain_trace(trace_of(recorded_fit(arrays, x, y, batch_size=None)), arrays, final_model_id=1, data=data)
    (run32,) = retrain_trace(trace_of(recorded_fit(arrays, x, y, batch_size=32)), arrays, final_model_id=1, data=data)
    assert run.status == "ok" and run.history == run32.history  # fit(batch_size=None) means 32
    assert json.loads(json.dumps(dataclasses.asdict(run)))["history"] == run.history


def test_fast_trainer_is_model_fit_math(data):
    """Without shuffling, FastTrainer reproduces model.fit step for step: same batches (a partial
    last one included), Adam state, L2 loss, BatchNormalization statistics, even Dropout's masks."""
    from grader.retrain.replay import _configure_tensorflow
    from grader.retrain.trainer import FastTrainer

    _configure_tensorflow()
    x, y = train_rows(data)

    def build():
        keras.utils.set_random_seed(5)
        model = keras.Sequential([
            keras.Input((28, 28)), keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-3)),
            keras.layers.BatchNormalization(), keras.layers.Dropout(0.3), keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    train, val = (x[:2400], y[:2400]), (x[2400:], y[2400:])
    fit = build().fit(*train, batch_size=64, epochs=2, validation_data=val, shuffle=False, verbose=0).history
    fast, _ = FastTrainer(build(), 64).fit(train, val, epochs=2, shuffle=False, callbacks=[],
                                           rng=np.random.default_rng(0))
    assert fast["loss"] == pytest.approx(fit["loss"], rel=1e-6)
    assert fast["accuracy"] == pytest.approx(fit["accuracy"], abs=1e-6)
    assert fast["val_loss"] == pytest.approx(fit["val_loss"], rel=1e-5)  # larger eval batches only
    assert fast["val_accuracy"] == pytest.approx(fit["val_accuracy"], abs=1e-6)


def test_probe_style_records_legacy_decay_and_loss_class(data, arrays):
    """As the probe records them: serialize_keras_object(model), a Loss object by class name, Keras 2
    `SGD(lr=..., decay=...)` as learning_rate + decay (replayed as lr / (1 + decay * iterations))."""
    x, y = train_rows(data, 1000)
    model = dense_model()
    probe_record = ModelRecord(1, "Sequential", [], [None, 28, 28],
                               json.loads(json.dumps(keras.saving.serialize_keras_object(model))))

    def run_with(optimizer_config):
        fit = recorded_fit(arrays, x, y, model=model, epochs=2,
                       compile=CompileRecord({"class_name": "SGD", "config": optimizer_config},
                                             "SparseCategoricalCrossentropy", ["acc"]))
        fit.model = probe_record
        return retrain_trace(trace_of(fit), arrays, final_model_id=None, data=data)[0]

    plain = run_with({"learning_rate": 0.1})
    decayed = run_with({"learning_rate": 0.1, "decay": 0.05})
    assert plain.status == decayed.status == "ok", (plain.reason, decayed.reason)
    assert decayed.history["loss"][0] != plain.history["loss"][0]
    assert run_with({"learning_rate": 0.1, "decay": 0.0}).history == plain.history
