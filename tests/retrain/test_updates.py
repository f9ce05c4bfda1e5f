"""The fused Adam update (grader.retrain.updates) against Keras' own `optimizer.apply`: bit for bit."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from grader.retrain import trainer as trainer_module
from grader.retrain.trainer import FastTrainer
from grader.retrain.updates import fusable, pin_xla_isa
from tests.builders import train_rows


def build(optimizer: keras.optimizers.Optimizer) -> keras.Model:
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((28, 28)), keras.layers.Flatten(),
        keras.layers.Dense(96, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-4)),
        keras.layers.Dropout(0.2), keras.layers.Dense(48, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def trained_state(data, optimizer_factory, monkeypatch, *, keras_apply: bool) -> list[np.ndarray]:
    """Weights and every optimizer variable (m, v, iterations, ...) after 2 shuffled epochs, as the
    retrain process trains them (its thread and determinism settings)."""
    from grader.retrain.replay import _configure_tensorflow

    _configure_tensorflow()
    x, y = train_rows(data, 3000)
    with monkeypatch.context() as patch:
        if keras_apply:  # the reference: Keras' optimizer.apply, variable by variable
            patch.setattr(trainer_module, "fused_apply", lambda opt, vs: lambda grads: opt.apply(grads, list(vs)))
        model = build(optimizer_factory())
        FastTrainer(model, 64).fit((x[:2400], y[:2400]), (x[2400:], y[2400:]), epochs=2, shuffle=True,
                                   callbacks=[], rng=np.random.default_rng(7))
    return [np.array(w) for w in model.get_weights()] + [np.array(v) for v in model.optimizer.variables]


OPTIMIZERS = {
    "adam": lambda: keras.optimizers.Adam(),
    "adam, other hyper-parameters": lambda: keras.optimizers.Adam(learning_rate=3e-3, beta_1=0.8, beta_2=0.99,
                                                                  epsilon=1e-5),
    "adam, a learning-rate schedule": lambda: keras.optimizers.Adam(
        keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=10, decay_rate=0.9)),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_fused_adam_is_keras_adam_bit_for_bit(fmnist, monkeypatch, name):
    factory = OPTIMIZERS[name]
    model = build(factory())
    model.optimizer.build(model.trainable_variables)
    assert fusable(model.optimizer, model.trainable_variables)  # the fused path is the one under test
    fused = trained_state(fmnist, factory, monkeypatch, keras_apply=False)
    reference = trained_state(fmnist, factory, monkeypatch, keras_apply=True)
    assert len(fused) == len(reference) > 6
    for a, b in zip(fused, reference):
        assert a.shape == b.shape and np.array_equal(a, b)
    steps = [int(a) for a in fused if a.ndim == 0 and a.dtype.kind == "i"]
    assert steps == [2 * 38]  # iterations: 2 epochs of 38 steps (the last one partial), counted as Keras does


@pytest.mark.parametrize("optimizer", [
    keras.optimizers.Adam(amsgrad=True), keras.optimizers.Adam(clipnorm=1.0), keras.optimizers.Adam(clipvalue=0.5),
    keras.optimizers.Adam(global_clipnorm=1.0), keras.optimizers.Adam(weight_decay=1e-4),
    keras.optimizers.Adam(use_ema=True), keras.optimizers.Adam(gradient_accumulation_steps=2),
    keras.optimizers.AdamW(), keras.optimizers.SGD(momentum=0.9), keras.optimizers.RMSprop(), keras.optimizers.Nadam(),
], ids=lambda o: type(o).__name__)
def test_what_keeps_keras_apply(optimizer):
    model = build(optimizer)
    model.optimizer.build(model.trainable_variables)
    assert not fusable(model.optimizer, model.trainable_variables)


def test_a_constrained_variable_keeps_keras_apply():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, kernel_constraint=keras.constraints.MaxNorm(1))])
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    model.optimizer.build(model.trainable_variables)
    assert not fusable(model.optimizer, model.trainable_variables)


def test_the_instruction_set_pin(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert pin_xla_isa()
    import os

    assert os.environ["XLA_FLAGS"] == "--xla_cpu_max_isa=AVX"
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    assert pin_xla_isa() and os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x --xla_cpu_max_isa=AVX"
    # Someone chose a wider set (with FMA): kept, and the fused update stands down.
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_max_isa=AVX2")
    assert not pin_xla_isa() and os.environ["XLA_FLAGS"] == "--xla_cpu_max_isa=AVX2"
