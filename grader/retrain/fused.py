"""Fused training: several models of one hand-in with the same layer shapes trained in one graph.

A hand-in trains many models of identical shape one after the other (sigmoid vs ReLU, three
initialisers, three optimizers), each with small matrix products (batch 128 x 784 x 256) that leave
most of the CPU idle between ops. Trained alone, every one of them sees the same batches: the grader
seeds each run's shuffle with the same seed and the same data. `FusedTrainer` runs one step of ALL of
them at once: the batch is gathered once, the first Dense layer is one matrix product against the
models' kernels side by side, the later Dense layers one batched product of the stacked kernels.
Everything else is each model's own: its Keras variables (the stacks are views built inside the
graph, so gradients flow back to them), its activations, its Dropout layers (their own seed
generators, so the same masks as alone), its loss with its regularisers, its optimizer and state,
its callbacks (EarlyStopping and restore_best_weights act on each model alone). Per model the math is
`FastTrainer`'s; only the float summation order of the products may differ.

`fusion_signature` says which recorded runs may be trained together; anything else (convolutions,
several fits of one model, activity regularisers, functional graphs) trains alone as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from grader.retrain.trainer import _EVAL_BATCH, class_indices

# Layers the fused forward pass knows: a plain chain of these, nothing else.
_FUSABLE_LAYERS = frozenset({"InputLayer", "Flatten", "Dense", "Dropout"})
MIN_GROUP = 2  # one model alone gains nothing from fusing (measured: same speed, one more trace)


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


def _chain(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


class FusedTrainer:
    """Trains several compiled Keras models of one shape together, each as `FastTrainer` would alone."""

    def __init__(self, models: list[keras.Model], batch_size: int):
        chains = [_chain(m) for m in models]
        kinds = {tuple(type(layer).__name__ for layer in chain) for chain in chains}
        if len(models) < 1 or len(kinds) != 1 or not set(next(iter(kinds))) <= _FUSABLE_LAYERS:
            raise ValueError("models of different layer types cannot be fused")
        for position in zip(*chains):
            if isinstance(position[0], keras.layers.Dense):
                if len({tuple(layer.kernel.shape) for layer in position}) != 1:
                    raise ValueError("Dense layers of different shapes cannot be fused")
                if any((layer.bias is None) != (position[0].bias is None) for layer in position):
                    raise ValueError("Dense layers with and without bias cannot be fused")
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
        """Each member's output for the shared batch; Dense products batched across members."""
        chains = [_chain(self.models[i]) for i in members]
        shared: tf.Tensor | None = tf.cast(xb, tf.float32)  # one tensor for all while nothing differs yet
        hs: list[tf.Tensor] = []
        for position in zip(*chains):
            if isinstance(position[0], keras.layers.Dense):
                if shared is not None:
                    if shared.shape.rank != 2:
                        raise ValueError("a Dense layer on a rank > 2 input is not fused")
                    # One product against the kernels side by side: [B, in] x [in, M*units].
                    z = tf.matmul(shared, tf.concat([_value(layer.kernel) for layer in position], axis=1))
                    parts = tf.split(z, len(position), axis=1)
                    shared = None
                else:
                    # One batched product of the stacked activations and kernels: [M, B, in] x [M, in, units].
                    parts = tf.unstack(tf.matmul(tf.stack(hs), tf.stack([_value(layer.kernel) for layer in position])))
                hs = [_dense_tail(layer, z) for layer, z in zip(position, parts)]
            elif shared is not None and isinstance(position[0], keras.layers.Flatten):
                shared = position[0](shared)  # a reshape: the same for every member
            else:  # Dropout (each its own seed generator, as alone) or a per-member Flatten
                inputs = hs if shared is None else [shared] * len(position)
                hs = [layer(h, training=training) for layer, h in zip(position, inputs)]
                shared = None
        return hs if shared is None else [shared] * len(chains)

    def _functions(self, members: tuple[int, ...], x: tf.Tensor, y: tf.Tensor) -> None:
        if members == self._members:
            return
        models = [self.models[i] for i in members]
        variables = [m.trainable_variables for m in models]
        batch = self.batch_size

        def run_epoch(x, y, classes, perm):
            n = tf.shape(perm)[0]
            steps = (n + batch - 1) // batch

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
                for model, vs in zip(models, variables):
                    model.optimizer.apply(grads[start : start + len(vs)], vs)
                    start += len(vs)
                size = tf.cast(tf.shape(idx)[0], tf.float32)
                step_losses = tf.stack([tf.cast(loss, tf.float32) * size for loss in losses])
                step_hits = tf.stack([_hits(p, cb) for p in preds])
                return i + 1, loss_sums + step_losses, corrects + step_hits

            zeros = tf.zeros((len(models),))
            _, loss_sums, corrects = tf.while_loop(lambda i, *_: i < steps, step, (tf.constant(0), zeros, zeros))
            count = tf.cast(n, tf.float32)
            return loss_sums / count, corrects / count

        def evaluate_batch(xb, yb, cb):
            preds = self._forward(members, xb, training=False)
            size = tf.cast(tf.shape(xb)[0], tf.float32)
            losses = [tf.cast(m.compute_loss(x=xb, y=yb, y_pred=p, training=False), tf.float32) * size
                      for m, p in zip(models, preds)]
            return tf.stack(losses), tf.stack([_hits(p, cb) for p in preds])

        xs = tf.TensorSpec((None, *x.shape[1:]), x.dtype)
        ys = tf.TensorSpec((None, *y.shape[1:]), y.dtype)
        cs = tf.TensorSpec((None,), tf.int32)
        self._epoch_fn = tf.function(run_epoch, autograph=False, input_signature=[xs, ys, cs, cs])
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
            on_epoch: Callable[[int, int], None] | None = None) -> tuple[list[dict[str, list[float]]], list[bool]]:
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
            losses, accs = self._epoch_fn(x, y, classes, tf.convert_to_tensor(order.astype(np.int32)))
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
            if on_epoch is not None:
                on_epoch(epoch, len(members))
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


def _dense_tail(layer: keras.layers.Dense, z: tf.Tensor) -> tf.Tensor:
    """The rest of Dense.call after the product: bias, then activation."""
    if layer.bias is not None:
        z = tf.add(z, _value(layer.bias))
    return layer.activation(z) if layer.activation is not None else z


def _value(variable: Any) -> tf.Tensor:
    """A Keras variable as a tensor read inside the tape (its gradient reaches the variable)."""
    return tf.convert_to_tensor(variable)


def _hits(pred: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(pred, axis=-1, output_type=tf.int32), classes), tf.float32))


def train_group(runs: list[Any], fits: list[Any], epochs: list[int], data: Any, *, batch_size: int,
                ignored: frozenset[str], deadline: float | None) -> None:
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
    histories, cut = FusedTrainer(models, batch_size).fit(
        (data.x_train, data.y_train), (data.x_val, data.y_val), epochs=epochs, shuffle=bool(fits[0].shuffle),
        callbacks=callbacks, rng=np.random.default_rng(runs[0].seed), deadline=deadline)
    wall = (time.monotonic() - started) / len(runs)  # the group's time, shared evenly
    for run, fit, history, planned, was_cut in zip(runs, fits, histories, epochs, cut):
        run.history = history
        run.epochs_run = len(history["loss"])
        val = history["val_accuracy"]
        run.best_val_accuracy = max(val) if val else None
        run.last_val_accuracy = val[-1] if val else None
        if was_cut:
            run.status = "budget"
            run.reason = f"retrain time budget used up during fit {fit.index} (after {run.epochs_run} of {planned} epochs)"
        run.wall_s = wall
        run.notes.append(f"trained in one graph with {len(runs) - 1} other model(s) of the same shape")
