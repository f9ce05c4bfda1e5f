"""Part of the probe (copied beside it into the kernel as `grader_probe_steps`; stdlib + numpy +
keras, nothing of grader): training outside `fit`.

- `train_on_batch` / `test_on_batch` are wrapped by the probe (on keras.Model and on the trainer
  bases) and, like fit, record and do not train;
- `optimizer.apply_gradients` (a GradientTape loop) is recorded and runs for real; the batch it
  trained on is the last input the student passed to that model (`model(xb)`, seen by the probe's
  `Model.__call__` wrapper).

One `train_step` event per kind, model and place: sent at steps 1, 2, 4, 8, ... with the batch of
that step (at most MAX_STEP_BATCHES) and the array the batches are slices of, and again before the
next cell with the final count. The trusted side (grader.capture.events) merges them.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any

import numpy as np

MAX_STEP_BATCHES = 8  # as grader.capture.trace.MAX_STEP_BATCHES (this file imports nothing of grader)


def patch_optimizer(keras: Any, probe: Any) -> None:
    """`optimizer.apply_gradients(...)` (a GradientTape loop) is recorded and runs for real."""
    owner = next((c for c in keras.optimizers.Optimizer.__mro__ if "apply_gradients" in vars(c)), None)
    if owner is None:
        return
    original = vars(owner)["apply_gradients"]

    def apply_gradients(self: Any, grads_and_vars: Any, *args: Any, **kwargs: Any) -> Any:
        pairs = list(grads_and_vars)  # a zip() can be read once: read it here, pass the list on
        probe.guarded(probe.on_apply_gradients, pairs)
        return original(self, pairs, *args, **kwargs)

    wrapper = functools.wraps(original)(apply_gradients)
    owner.apply_gradients = wrapper
    probe.base_patches.append((owner, "apply_gradients", wrapper))


class StepRecorder:
    """Mixed into the probe, which provides where(), model_id(), array_ref(), emit() and the
    models it saw (_births, _models)."""

    _births: dict
    _models: dict

    def init_steps(self) -> None:
        self._steps: dict[tuple, dict] = {}  # (kind, model_id, cell, line, function) -> train_step event
        self._unsent: set[tuple] = set()  # records whose latest count is not in events.jsonl yet
        self._last_inputs: dict[int, tuple[Any, Any]] = {}  # id(model) -> (weakref, last input)
        self._variable_owners: dict[int, list] = {}  # id(variable) -> weakrefs to the models holding it

    def last_input(self, model: Any, x: Any) -> None:
        try:
            self._last_inputs[id(model)] = (weakref.ref(model), x)
        except TypeError:
            pass

    def on_apply_gradients(self, pairs: list) -> None:
        variables = [v for _, v in pairs if v is not None]
        model = self._owner(variables[0]) if variables else None
        entry = self._last_inputs.get(id(model)) if model is not None else None
        x = entry[1] if entry is not None and entry[0]() is model else None
        self.step("apply_gradients", model, x)

    def _owner(self, variable: Any) -> Any:
        """The model (one the probe saw) whose trainable variables include `variable`; of several
        (a Sequential shares its variables with the Functional it builds inside), the one the
        student called last, else the one with a model id."""
        refs = self._variable_owners.get(id(variable))
        owners = [m for m in (r() for r in refs or []) if m is not None]
        if not owners:
            candidates = [r for r, _ in self._births.values()] + [r for r, _ in self._models.values()]
            owners = [m for m in (r() for r in candidates) if m is not None
                      and any(v is variable for v in getattr(m, "trainable_variables", []))]
            if owners:
                self._variable_owners[id(variable)] = [weakref.ref(m) for m in owners]
        called = [m for m in owners if id(m) in self._last_inputs]
        known = [m for m in owners if id(m) in self._models]
        return (called or known or owners or [None])[0]

    def step(self, kind: str, model: Any, x: Any) -> None:
        """Count one step; keep the batch at steps 1, 2, 4, 8 ... and send the record then (the rest
        of the count goes out with flush_steps() before the next cell)."""
        loc = self.where()
        model_id = self.model_id(model) if model is not None else None
        key = (kind, model_id, loc["cell"], loc["line"], loc["function"])
        record = self._steps.get(key)
        if record is None:
            record = self._steps[key] = {"event": "train_step", "kind": kind, "model_id": model_id, "steps": 0,
                                         "x": [], "source": None, "location": loc}
        record["steps"] += 1
        n = record["steps"]
        if n & (n - 1):
            self._unsent.add(key)
            return
        arr = as_array(x) if x is not None else None
        if arr is not None and len(record["x"]) < MAX_STEP_BATCHES:
            ref = self.array_ref(arr, "x", {})
            if ref is not None:
                record["x"].append(ref)
            base = _base_of(x)
            if record["source"] is None and base is not None:
                record["source"] = self.array_ref(base, "source", {})
        self.emit(record)
        self._unsent.discard(key)

    def flush_steps(self) -> None:
        for key in list(self._unsent):
            self.emit(self._steps[key])
        self._unsent.clear()


def as_array(value: Any) -> np.ndarray | None:
    """A numpy array, a tf.Tensor's value; None for anything else (symbolic tensors included)."""
    if isinstance(value, np.ndarray):
        arr = value
    elif hasattr(value, "numpy") and hasattr(value, "shape") and hasattr(value, "dtype"):
        try:
            arr = np.asarray(value.numpy())
        except Exception:
            return None
    else:
        return None
    return None if arr.dtype == object else arr


def _base_of(x: Any) -> np.ndarray | None:
    """The array a numpy batch is a slice of (x_test for x_test[i:i+32]), when it is one."""
    base = getattr(x, "base", None)
    if not isinstance(x, np.ndarray) or not isinstance(base, np.ndarray) or base.ndim != x.ndim:
        return None
    if base.shape[1:] != x.shape[1:] or base.shape[0] <= x.shape[0] or base.dtype == object:
        return None
    return base
