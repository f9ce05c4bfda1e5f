"""Benchmark: the grader's FastTrainer against plain `model.fit`, and against the compute floor.

Prints ratios from ONE run (the machine is shared, so absolute times drift; both timings come from
the same process minutes apart, which keeps the ratio meaningful). Reference workload: Flatten ->
Dense 128/100/64 ReLU -> Dense 10 softmax on Fashion-MNIST, SGD, batch 64, 48,000 / 12,000 split.

    .venv/bin/python bench/retrain.py [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from grader.data import canonical_split, load_fashion_mnist
from grader.retrain.replay import _configure_tensorflow

_configure_tensorflow()  # same threads and determinism for both contenders

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from grader.retrain.trainer import FastTrainer  # noqa: E402

UNITS = (128, 100, 64, 10)
BATCH = 64


class EpochClock(keras.callbacks.Callback):
    """Wall time of each epoch, validation included (on_epoch_end comes after it in both)."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []
        self.cpu: list[float] = []  # process CPU seconds: less distorted by other jobs on the cores

    def on_epoch_begin(self, epoch, logs=None):
        self._t, self._c = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t)
        self.cpu.append(time.process_time() - self._c)


def build(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((28, 28)), keras.layers.Flatten()]
    layers += [keras.layers.Dense(u, activation="relu") for u in UNITS[:-1]]
    model = keras.Sequential(layers + [keras.layers.Dense(UNITS[-1], activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def sgemm_gflops(size: int = 1024, repeat: int = 20) -> float:
    """Best-of float32 matmul throughput through TensorFlow, the floor's yardstick."""
    rng = np.random.default_rng(0)
    a = tf.constant(rng.standard_normal((size, size), dtype=np.float32))
    b = tf.constant(rng.standard_normal((size, size), dtype=np.float32))
    tf.matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        tf.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


def epoch_gflop(n_train: int, n_val: int) -> float:
    """Multiply-adds of the dense layers: forward 2 FLOP each, backward 4 more; validation forward only."""
    macs = sum(a * b for a, b in zip((784, *UNITS[:-1]), UNITS))
    return (6 * macs * n_train + 2 * macs * n_val) / 1e9


def steady(times: list[float]) -> float:
    """Per-epoch time without the first epoch (graph tracing) when there are more."""
    return float(np.median(times[1:] if len(times) > 1 else times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4, help="at least 2 (the first one traces)")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    (x_tr, y_tr), (x_val, y_val) = canonical_split(load_fashion_mnist())
    x_tr, x_val = (x_tr / 255.0).astype(np.float32), (x_val / 255.0).astype(np.float32)
    gflops = sgemm_gflops()

    fit_clock = EpochClock()
    plain = build(args.seed).fit(x_tr, y_tr, batch_size=BATCH, epochs=args.epochs, validation_data=(x_val, y_val),
                                 shuffle=True, verbose=0, callbacks=[fit_clock])

    fast_clock = EpochClock()
    model = build(args.seed)  # same initial weights as the plain run
    history, _ = FastTrainer(model, BATCH).fit((x_tr, y_tr), (x_val, y_val), epochs=args.epochs, shuffle=True,
                                               callbacks=[fast_clock], rng=np.random.default_rng(args.seed))

    # Best of two measurements, before and after: other jobs on the cores only ever slow it down.
    gflops = max(gflops, sgemm_gflops())
    floor = epoch_gflop(len(x_tr), len(x_val)) / gflops
    t_fit, t_fast = steady(fit_clock.times), steady(fast_clock.times)
    c_fit, c_fast = steady(fit_clock.cpu), steady(fast_clock.cpu)
    print(f"machine: {os.cpu_count()} cores, sgemm {gflops:.0f} GFLOP/s; "
          f"epoch = {epoch_gflop(len(x_tr), len(x_val)):.1f} GFLOP -> floor {floor:.3f} s/epoch")
    print(f"plain fit   : {t_fit:.3f} s/epoch  (epochs {', '.join(f'{t:.2f}' for t in fit_clock.times)})")
    print(f"FastTrainer : {t_fast:.3f} s/epoch  (epochs {', '.join(f'{t:.2f}' for t in fast_clock.times)})")
    print(f"best epochs (least disturbed by other jobs): plain {min(fit_clock.times[1:]):.3f} s, "
          f"fast {min(fast_clock.times[1:]):.3f} s -> {min(fit_clock.times[1:]) / min(fast_clock.times[1:]):.2f}x")
    print(f"speed-up plain fit / FastTrainer = {t_fit / t_fast:.2f}x wall, {c_fit / c_fast:.2f}x CPU time "
          f"({c_fit:.3f} / {c_fast:.3f} CPU s/epoch)   FastTrainer / floor = {t_fast / floor:.2f}x")
    for epoch in range(args.epochs):
        a, b = plain.history["val_accuracy"][epoch], history["val_accuracy"][epoch]
        print(f"epoch {epoch + 1}: val_accuracy plain {a:.4f}  fast {b:.4f}  diff {100 * (b - a):+.2f} points"
              "  (shuffle orders differ)")
    # Same batches in the same order: the two must agree to rounding, which isolates the math.
    same = build(args.seed).fit(x_tr, y_tr, batch_size=BATCH, epochs=1, validation_data=(x_val, y_val),
                                shuffle=False, verbose=0).history
    fast, _ = FastTrainer(build(args.seed), BATCH).fit((x_tr, y_tr), (x_val, y_val), epochs=1, shuffle=False,
                                                       callbacks=[], rng=np.random.default_rng(0))
    print(f"no shuffle, 1 epoch: val_accuracy plain {same['val_accuracy'][0]:.4f} fast {fast['val_accuracy'][0]:.4f}; "
          f"loss plain {same['loss'][0]:.6f} fast {fast['loss'][0]:.6f}")


if __name__ == "__main__":
    main()
