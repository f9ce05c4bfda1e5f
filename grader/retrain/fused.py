"""Fused training: several models of one hand-in with the same layer shapes trained in one graph.

A hand-in trains many models of identical shape one after the other (sigmoid vs ReLU, three
initialisers, three optimizers), each with small matrix products (batch 128 x 784 x 256) that leave
the cores idle between ops. Trained alone, every one of them sees the same batches: the grader seeds
each run's shuffle with the same seed and trains on the same arrays. `FusedTrainer` runs one step of
ALL of them in one graph call: a `tf.while_loop` over the batches of the shared permutation, the batch
gathered once, then per model exactly `FastTrainer`'s step (its own layers with its activations and
Dropout seed generators, its loss with its regularisers, its optimizer and state), so the runtime
interleaves the models' independent ops on the cores. Callbacks stay per model (EarlyStopping and
restore_best_weights act on each model alone; a stopped model leaves the group).

Per model the numbers are bit for bit those of training it alone (a test checks it on real data), so
the retrain cache holds the same entries whichever way a run was trained. Measured on the shared
2-core machine (6 models 784-256-128-10, batch 128, 48,000 rows, 2 epochs, process CPU time, load
15-18): alone 25.0 s, fused 17.8 s. The variant the issue sketched, stacked kernels with one product
against all kernels side by side and batched products after it, cost more (21.2 s: the concat/stack
copies outweigh the bigger products at these sizes) and is not exact: oneDNN fuses MatMul+BiasAdd
alone but not after a split, and RMSprop amplified the last-bit differences to 6.7e-4 in the first
epoch's loss, over the 1e-4 tolerance. It is in this file's history (first commit of fused.py).

`fusion_signature` says which recorded runs may be trained together; anything else (convolutions,
several fits of one model, activity regularisers, functional graphs; not measured) trains alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from grader.retrain.progress import Progress, RetrainProgress
from grader.retrain.trainer import _EVAL_BATCH, CHUNK_SPECS, class_indices, run_epoch, sums_specs
from grader.retrain.updates import fused_apply

# What fusing was measured on (the homework's dense networks); the graph itself would take any model,
# but whether it pays for convolutions was not measured, so those keep training alone.
_FUSABLE_LAYERS = frozenset({"InputLayer", "Flatten", "Dense", "Dropout"})
MIN_GROUP = 2  # a group of one is just training alone


def fusion_signature(fits: Sequence[Any], default_batch: int) -> tuple | None:
    """What must be equal for runs to train together; None when this run must train alone.

    `fits` are the FitRecords replayed on one model object. Only one fit of a never-fitted
    Sequential chain of Flatten / Dense / Dropout qualifies; the signature holds the layer shapes
    (Dropout rates, activations, initialisers, regularisers and the optimizer may differ), the input
    shape, the batch size, the shuffle flag and the training arrays (same arrays: same batches).
    """
    if len(fits) != 1:
        return None
    fit = fits[0]
    if fit.compile is None or fit.prior_fits or fit.x is None or fit.y is None:
        return None
    # Read from the config the model is rebuilt from (the probe's layer summary is only a summary).
    config = fit.model.config if isinstance(fit.model.config, dict) else {}
    layers = (config.get("config") or {}).get("layers") if config.get("class_name") == "Sequential" else None
    if not isinstance(layers, list) or not layers:
        return None
    shapes = []
    for layer in layers:
        kind = layer.get("class_name") if isinstance(layer, dict) else None
        cfg = layer.get("config") if isinstance(layer, dict) and isinstance(layer.get("config"), dict) else {}
        if kind not in _FUSABLE_LAYERS or cfg.get("activity_regularizer"):
            return None
        if kind != "InputLayer":
            shapes.append((kind, cfg.get("units"), cfg.get("use_bias")))
    arrays = tuple(r.digest if r is not None else None for r in (fit.x, fit.y, *(fit.validation_data or [])))
    return tuple(shapes), tuple(fit.x.shape[1:]), int(fit.batch_size or default_batch), bool(fit.shuffle), arrays


class FusedTrainer:
    """Trains several compiled Keras models of one shape together, each as `FastTrainer` would alone."""

    def __init__(self, models: list[keras.Model], batch_size: int):
        if not models or len({id(m) for m in models}) != len(models):
            raise ValueError("fusing needs distinct models")
        for model in models:
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
        self.models = models
        self.batch_size = int(batch_size)
        self._members: tuple[int, ...] | None = None  # the models the traced functions train
        self._epoch_fn: Callable | None = None
        self._eval_fn: Callable | None = None

    # -- the graph ---------------------------------------------------------------------------------

    def _forward(self, members: Sequence[int], xb: tf.Tensor, training: bool) -> list[tf.Tensor]:
        """Each member's output for the shared batch: its own layers, as `FastTrainer` calls them."""
        return [self.models[i](xb, training=training) for i in members]

    def _functions(self, members: tuple[int, ...], x: tf.Tensor, y: tf.Tensor) -> None:
        if members == self._members:
            return
        models = [self.models[i] for i in members]
        variables = [m.trainable_variables for m in models]
        applies = [fused_apply(m.optimizer, vs) for m, vs in zip(models, variables)]  # as FastTrainer's step
        batch = self.batch_size

        def run_steps(x, y, classes, perm, first, last, loss_sums, corrects):
            n = tf.shape(perm)[0]

            def step(i, loss_sums, corrects):
                idx = perm[i * batch : tf.minimum((i + 1) * batch, n)]
                xb, yb, cb = tf.gather(x, idx), tf.gather(y, idx), tf.gather(classes, idx)
                with tf.GradientTape() as tape:
                    preds = self._forward(members, xb, training=True)
                    losses = [m.compute_loss(x=xb, y=yb, y_pred=p, training=True) for m, p in zip(models, preds)]
                    # The sum's gradient for a model's variables is its own loss's gradient (disjoint variables).
                    total = tf.add_n([tf.cast(loss, tf.float32) for loss in losses])
                grads = tape.gradient(total, [v for vs in variables for v in vs])
                start = 0
                for apply, vs in zip(applies, variables):
                    apply(grads[start : start + len(vs)])
                    start += len(vs)
                size = tf.cast(tf.shape(idx)[0], tf.float32)
                step_losses = tf.stack([tf.cast(loss, tf.float32) * size for loss in losses])
                step_hits = tf.stack([_hits(p, cb) for p in preds])
                return i + 1, loss_sums + step_losses, corrects + step_hits

            _, loss_sums, corrects = tf.while_loop(lambda i, *_: i < last, step, (first, loss_sums, corrects))
            return loss_sums, corrects

        def evaluate_batch(xb, yb, cb):
            preds = self._forward(members, xb, training=False)
            size = tf.cast(tf.shape(xb)[0], tf.float32)
            losses = [tf.cast(m.compute_loss(x=xb, y=yb, y_pred=p, training=False), tf.float32) * size
                      for m, p in zip(models, preds)]
            return tf.stack(losses), tf.stack([_hits(p, cb) for p in preds])

        xs = tf.TensorSpec((None, *x.shape[1:]), x.dtype)
        ys = tf.TensorSpec((None, *y.shape[1:]), y.dtype)
        cs = tf.TensorSpec((None,), tf.int32)
        self._epoch_fn = tf.function(run_steps, autograph=False,
                                     input_signature=[xs, ys, cs, cs, *CHUNK_SPECS, *sums_specs((len(models),))])
        self._eval_fn = tf.function(evaluate_batch, autograph=False, input_signature=[xs, ys, cs])
        self._members = members

    def _evaluate(self, x: tf.Tensor, y: tf.Tensor, classes: tf.Tensor) -> tuple[np.ndarray, np.ndarray]:
        n = int(x.shape[0])
        loss_sums = corrects = np.zeros(len(self._members or ()))
        for start in range(0, n, _EVAL_BATCH):  # the same chunks as FastTrainer.evaluate
            end = min(start + _EVAL_BATCH, n)
            ls, c = self._eval_fn(x[start:end], y[start:end], classes[start:end])
            loss_sums = loss_sums + ls.numpy().astype(np.float64)
            corrects = corrects + c.numpy().astype(np.float64)
        return loss_sums / n, corrects / n

    # -- the loop ----------------------------------------------------------------------------------

    def fit(self, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], *,
            epochs: Sequence[int], shuffle: bool, callbacks: Sequence[list[keras.callbacks.Callback]],
            rng: np.random.Generator, deadline: float | None = None,
            progress: Sequence[Progress | None] | None = None) -> tuple[list[dict[str, list[float]]], list[bool]]:
        """Train model i for epochs[i] epochs; returns (history per model, hit_deadline per model).

        One shuffle per epoch for all (the same permutation each would draw alone from the same seed);
        a model leaves the group when its epochs are done or its callbacks stop it.
        """
        x, y = tf.convert_to_tensor(train[0]), tf.convert_to_tensor(train[1])
        classes = tf.convert_to_tensor(class_indices(train[1]))
        xv, yv = tf.convert_to_tensor(val[0]), tf.convert_to_tensor(val[1])
        cv = tf.convert_to_tensor(class_indices(val[1]))
        n = int(x.shape[0])
        histories = [{"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []} for _ in self.models]
        hit_deadline = [False] * len(self.models)
        for model, cbs in zip(self.models, callbacks):
            model.stop_training = False
            for cb in cbs:
                cb.set_model(model)
                cb.on_train_begin()
        active = [i for i, e in enumerate(epochs) if e > 0]
        epoch = 0
        while active:
            members = tuple(active)
            self._functions(members, x, y)
            for i in members:
                for cb in callbacks[i]:
                    cb.on_epoch_begin(epoch)
            order = rng.permutation(n) if shuffle else np.arange(n)
            ticks = [progress[i] for i in members if progress[i] is not None] if progress else []
            sums = run_epoch(self._epoch_fn, (x, y, classes, tf.convert_to_tensor(order.astype(np.int32))), n,
                             self.batch_size, tf.zeros((len(members),)), epoch=epoch, deadline=deadline,
                             progress=_all(ticks) if ticks else None)
            if sums is None:  # the deadline cut this epoch: it is not in the histories
                for i in members:
                    hit_deadline[i] = True
                    for cb in callbacks[i]:
                        cb.on_train_end()
                break
            losses, accs = sums
            val_losses, val_accs = self._evaluate(xv, yv, cv)
            for j, i in enumerate(members):
                logs = {"loss": float(losses[j]), "accuracy": float(accs[j]),
                        "val_loss": float(val_losses[j]), "val_accuracy": float(val_accs[j])}
                for key, value in logs.items():
                    histories[i][key].append(value)
                logs.update(acc=logs["accuracy"], val_acc=logs["val_accuracy"])  # Keras <= 2.2 names
                if callbacks[i]:
                    logs["learning_rate"] = float(np.asarray(self.models[i].optimizer.learning_rate))
                for cb in callbacks[i]:
                    cb.on_epoch_end(epoch, logs)
            epoch += 1
            done = [i for i in members if self.models[i].stop_training or epoch >= epochs[i]]
            if deadline is not None and time.monotonic() > deadline:
                for i in members:
                    hit_deadline[i] = i not in done
                done = list(members)
            for i in done:
                for cb in callbacks[i]:
                    cb.on_train_end()
            active = [i for i in members if i not in done]
        return histories, hit_deadline


def _all(ticks: list[Progress]) -> Progress:
    """One progress call for the group: every member moves with it."""
    def tick(value: float) -> None:
        for each in ticks:
            each(value)
    return tick


def _hits(pred: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(pred, axis=-1, output_type=tf.int32), classes), tf.float32))


def train_group(runs: list[Any], fits: list[Any], epochs: list[int], data: Any, *, batch_size: int,
                ignored: frozenset[str], deadline: float | None, progress: RetrainProgress | None = None) -> None:
    """Rebuild, train together and fill `runs` (RunResults of one signature, one fit each) in place.

    Each model is rebuilt exactly as the grader rebuilds it alone (fresh session, the run's seed),
    so initial weights and Dropout seeds are the ones it would have alone.
    """
    from grader.retrain.allowlist import build_callbacks, build_loss, build_optimizer, rebuild_model

    if len({run.seed for run in runs}) != 1:
        raise ValueError("runs with different seeds shuffle differently")
    started = time.monotonic()
    models, callbacks = [], []
    for run, fit in zip(runs, fits):
        keras.backend.clear_session()
        keras.utils.set_random_seed(run.seed)
        model = rebuild_model(fit.model, (None, *data.x_train.shape[1:]))
        model.compile(optimizer=build_optimizer(fit.compile.optimizer), loss=build_loss(fit.compile.loss))
        cbs, notes = build_callbacks(fit.callbacks)
        notes += [f"fit argument {name} ignored" for name in sorted(fit.other_kwargs) if name not in ignored]
        run.notes.extend(f"fit {fit.index}: {note}" for note in notes)
        models.append(model)
        callbacks.append(cbs)
    ticks = [progress.start(run, n) for run, n in zip(runs, epochs)] if progress is not None else None
    try:
        histories, cut = FusedTrainer(models, batch_size).fit(
            (data.x_train, data.y_train), (data.x_val, data.y_val), epochs=epochs, shuffle=bool(fits[0].shuffle),
            callbacks=callbacks, rng=np.random.default_rng(runs[0].seed), deadline=deadline, progress=ticks)
    except BaseException:
        for run in runs if progress is not None else []:
            progress.finish(run)
        raise
    wall = (time.monotonic() - started) / len(runs)  # the group's time, shared evenly
    for run, fit, history, planned, was_cut in zip(runs, fits, histories, epochs, cut):
        run.history = history
        run.epochs_run = len(history["loss"])
        val = history["val_accuracy"]
        run.best_val_accuracy = max(val) if val else None
        run.last_val_accuracy = val[-1] if val else None
        if was_cut:
            run.status, run.cut = "budget", "time"
            run.reason = f"retrain time budget used up during fit {fit.index} (after {run.epochs_run} of {planned} epochs)"
        run.wall_s = wall
        run.notes.append(f"trained in one graph with {len(runs) - 1} other model(s) of the same shape")
    for run in runs if progress is not None else []:  # after the histories: the bars end where the models did
        progress.finish(run)
