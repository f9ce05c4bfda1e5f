"""A fast replacement for `model.fit` with the same math.

`model.fit` pays per step for the tf.data iterator, the callback machinery and the metric objects;
for the small dense networks of this homework that overhead is most of the time. `FastTrainer`
runs a whole epoch as ONE graph call: a `tf.while_loop` over the batches of a shuffled permutation,
each step exactly Keras' `train_step` (forward with training=True, `model.compute_loss` with the
regularisation losses, gradients, `optimizer.apply`). Same batch size, a fresh full shuffle per
epoch (as `fit(shuffle=True)` does for arrays), the last partial batch included, the epoch's
loss/accuracy averaged over samples as Keras' trackers do. Validation runs in large batches.
Real Keras callbacks (EarlyStopping, ReduceLROnPlateau) get the same hooks and logs as in fit.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from grader.retrain.progress import Progress
from grader.retrain.updates import fused_apply

_EVAL_BATCH = 4096
# Steps per graph call: an epoch runs in chunks so that a deadline can cut it and a progress bar can
# move inside long (CNN) epochs; the running sums go through the calls, so the numbers do not change.
CHUNK_STEPS = 50


def run_epoch(chunk_fn: Callable, args: tuple, n: int, batch: int, zeros: tf.Tensor, *, epoch: int,
              progress: Progress | None, deadline: float | None) -> tuple[np.ndarray, np.ndarray] | None:
    """One epoch in chunks of CHUNK_STEPS steps: (loss, accuracy) over its rows, None when the deadline cut it."""
    steps = (n + batch - 1) // batch
    loss_sum, correct = zeros, zeros
    for first in range(0, steps, CHUNK_STEPS):
        last = min(first + CHUNK_STEPS, steps)
        loss_sum, correct = chunk_fn(*args, tf.constant(first), tf.constant(last), loss_sum, correct)
        if progress is not None:
            progress(epoch + last / steps)
        if deadline is not None and last < steps and time.monotonic() > deadline:
            return None
    count = np.float32(n)  # float32 division, as the former in-graph `loss_sum / count`
    return loss_sum.numpy() / count, correct.numpy() / count


CHUNK_SPECS = [tf.TensorSpec((), tf.int32), tf.TensorSpec((), tf.int32)]  # first and last step of a chunk


def sums_specs(shape: tuple[int, ...]) -> list[tf.TensorSpec]:
    """The running (loss sum, correct count) passed through the chunks: scalars, or one per fused model."""
    return [tf.TensorSpec(shape, tf.float32), tf.TensorSpec(shape, tf.float32)]


def class_indices(y: np.ndarray) -> np.ndarray:
    """Integer class per row from sparse labels ((n,) or (n, 1)) or one-hot / probability rows."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1).astype(np.int32)
    return y.reshape(len(y)).astype(np.int32)


class FastTrainer:
    """Trains one compiled Keras model; keeps its optimizer state between `fit` calls."""

    def __init__(self, model: keras.Model, batch_size: int):
        self.model = model
        self.batch_size = int(batch_size)
        if not model.optimizer.built:  # a second trainer (new batch size) keeps the optimizer state
            model.optimizer.build(model.trainable_variables)
        self._epoch_fn: Callable | None = None  # traced once per input format, see _functions
        self._eval_fn: Callable | None = None
        self._format: tuple | None = None

    def _functions(self, x: tf.Tensor, y: tf.Tensor) -> None:
        """Trace for this input format once, with an open row count (no retracing per shape)."""
        fmt = (tuple(x.shape[1:]), x.dtype, tuple(y.shape[1:]), y.dtype)
        if fmt == self._format:
            return
        xs = tf.TensorSpec((None, *fmt[0]), fmt[1])
        ys = tf.TensorSpec((None, *fmt[2]), fmt[3])
        cs = tf.TensorSpec((None,), tf.int32)
        # autograph off: the loop is an explicit tf.while_loop and Keras layers need no conversion;
        # it makes tracing, paid once per run, markedly cheaper.
        self._epoch_fn = tf.function(self._make_epoch_fn(), autograph=False,
                                     input_signature=[xs, ys, cs, cs, *CHUNK_SPECS, *sums_specs(())])
        self._eval_fn = tf.function(self._make_eval_fn(), autograph=False, input_signature=[xs, ys, cs])
        self._format = fmt

    def _make_epoch_fn(self) -> Callable:
        model, batch = self.model, self.batch_size
        apply = fused_apply(model.optimizer, model.trainable_variables)  # = optimizer.apply, faster where exact

        def run_steps(x, y, classes, perm, first, last, loss_sum, correct):
            n = tf.shape(perm)[0]

            def step(i, loss_sum, correct):
                idx = perm[i * batch : tf.minimum((i + 1) * batch, n)]
                xb, yb, cb = tf.gather(x, idx), tf.gather(y, idx), tf.gather(classes, idx)
                with tf.GradientTape() as tape:
                    pred = model(xb, training=True)
                    loss = model.compute_loss(x=xb, y=yb, y_pred=pred, training=True)
                grads = tape.gradient(loss, model.trainable_variables)
                apply(grads)
                size = tf.cast(tf.shape(idx)[0], tf.float32)
                hits = tf.equal(tf.argmax(pred, axis=-1, output_type=tf.int32), cb)
                return i + 1, loss_sum + tf.cast(loss, tf.float32) * size, correct + tf.reduce_sum(tf.cast(hits, tf.float32))

            _, loss_sum, correct = tf.while_loop(lambda i, *_: i < last, step, (first, loss_sum, correct))
            return loss_sum, correct

        return run_steps

    def _make_eval_fn(self) -> Callable:
        model = self.model

        def evaluate_batch(xb, yb, cb):
            pred = model(xb, training=False)
            loss = model.compute_loss(x=xb, y=yb, y_pred=pred, training=False)
            size = tf.cast(tf.shape(xb)[0], tf.float32)
            hits = tf.equal(tf.argmax(pred, axis=-1, output_type=tf.int32), cb)
            return tf.cast(loss, tf.float32) * size, tf.reduce_sum(tf.cast(hits, tf.float32))

        return evaluate_batch

    def evaluate(self, x: tf.Tensor, y: tf.Tensor, classes: tf.Tensor) -> tuple[float, float]:
        """(loss, accuracy) over all rows, as `model.evaluate` reports them."""
        self._functions(x, y)
        n = int(x.shape[0])
        loss_sum = correct = 0.0
        for start in range(0, n, _EVAL_BATCH):
            end = min(start + _EVAL_BATCH, n)
            ls, c = self._eval_fn(x[start:end], y[start:end], classes[start:end])
            loss_sum += float(ls)
            correct += float(c)
        return loss_sum / n, correct / n

    def fit(self, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], *,
            epochs: int, shuffle: bool, callbacks: list[keras.callbacks.Callback],
            rng: np.random.Generator, deadline: float | None = None,
            progress: Progress | None = None) -> tuple[dict[str, list[float]], bool]:
        """Train `epochs` epochs; returns (history, hit_deadline). Callbacks may stop it early; the
        deadline stops it between chunks (a cut epoch is not in the history)."""
        x, y = tf.convert_to_tensor(train[0]), tf.convert_to_tensor(train[1])
        classes = tf.convert_to_tensor(class_indices(train[1]))
        xv, yv = tf.convert_to_tensor(val[0]), tf.convert_to_tensor(val[1])
        cv = tf.convert_to_tensor(class_indices(val[1]))
        self._functions(x, y)
        n = int(x.shape[0])
        history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
        self.model.stop_training = False
        for cb in callbacks:
            cb.set_model(self.model)
            cb.on_train_begin()
        hit_deadline = False
        for epoch in range(epochs):
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            order = rng.permutation(n) if shuffle else np.arange(n)
            sums = run_epoch(self._epoch_fn, (x, y, classes, tf.convert_to_tensor(order.astype(np.int32))), n,
                             self.batch_size, tf.constant(0.0), epoch=epoch, progress=progress, deadline=deadline)
            if sums is None:  # the deadline cut this epoch: it is not in the history
                hit_deadline = True
                break
            loss, acc = sums
            val_loss, val_acc = self.evaluate(xv, yv, cv)
            logs = {"loss": float(loss), "accuracy": float(acc), "val_loss": val_loss, "val_accuracy": val_acc}
            for key, value in logs.items():
                history[key].append(value)
            # Old notebooks monitor "val_acc" (Keras <= 2.2 names): offer both spellings.
            logs.update(acc=logs["accuracy"], val_acc=val_acc)
            if callbacks:
                logs["learning_rate"] = float(np.asarray(self.model.optimizer.learning_rate))
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if self.model.stop_training:
                break
            if deadline is not None and time.monotonic() > deadline and epoch + 1 < epochs:
                hit_deadline = True
                break
        for cb in callbacks:
            cb.on_train_end()
        return history, hit_deadline

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Share of rows whose predicted class is the label's class (test accuracy)."""
        _, acc = self.evaluate(tf.convert_to_tensor(x), tf.convert_to_tensor(y),
                               tf.convert_to_tensor(class_indices(y)))
        return acc
