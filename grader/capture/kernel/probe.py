"""The probe: runs INSIDE the student kernel and records every Keras call (stdlib + numpy + keras).

It is copied next to nothing else into the kernel's PYTHONPATH as `grader_probe` and started by a
hidden first cell (`install(...)`); a hidden cell before each student cell calls `at_cell(i)`.

What it does to Keras (patched on the classes, so every import path -- `keras`, `tf.keras`,
`from keras.models import Sequential` -- is covered):
- `Model.fit` RECORDS AND DOES NOT TRAIN. It returns a `keras.callbacks.History` whose `.history`
  holds per-epoch lists of NaN for loss/accuracy/acc (val_ too, any metric name, any key with
  "acc" or "loss" in it), with `.epoch`, `.params` and `.model` set, so plotting cells keep running.
  The trusted side retrains the recorded models; nothing the student kernel computes is trusted.
- `Model.evaluate` records and returns NaN shaped like Keras' answer (scalar, list or dict).
- `Model.predict` records and runs for real on the untrained model (cheap), so argmax and
  confusion-matrix code keeps working (on meaningless numbers).
- `Model.compile` runs for real and records optimizer, loss and metrics.
- `fit`, `train_on_batch` and `test_on_batch` are wrapped on Keras' trainer bases too (TensorFlowTrainer,
  Trainer), so `type(model).__mro__[2].fit(model, ...)` or `super(keras.Model, m).fit(...)` is recorded
  like `model.fit`. Training outside fit (`train_on_batch`, `optimizer.apply_gradients` after a
  GradientTape) is recorded by steps.py as `train_step` events.
- Legacy idioms of 2019-era notebooks (probe_legacy.py): optimizers accept `lr=` and `decay=`,
  `fit(nb_epoch=)`, `fit_generator`/`predict_classes`, old module paths (keras.layers.core, ...).

Student code can undo all this (put `Model.fit.__wrapped__` back, delete this module from
sys.modules). `at_cell(i)` and every wrapped call check that the wrappers are still in place; a
replaced one is put back and reported as a `tamper` event. The live probe is kept on `builtins` so
that a fresh import of this module still finds it; when that is gone too, `at_cell` raises
GraderProbeLost and the runner notes the failed hidden cell. The trusted side does not rely on any
of this: grader.rules.integrity compares the fit calls in the source with the recorded ones.

Output: `events.jsonl` (one JSON object per line, flushed) and `arrays/<digest>.npy` in `out_dir`
(arrays.py: digest = sha256 over f"{dtype.str}{shape}" followed by the C-order bytes; float64 arrays
are cast to float32 first).
"""

from __future__ import annotations

import builtins
import functools
import inspect
import json
import math
import os
import sys
import weakref
from typing import Any

import numpy as np

try:  # inside the kernel the probe's files sit side by side on PYTHONPATH; the grader package is blocked
    import grader_probe_arrays as arrays
    import grader_probe_legacy as legacy
    import grader_probe_names as names
    import grader_probe_steps as steps
except ImportError:
    from . import arrays, legacy, names, steps

_probe: _Probe | None = None
# The live probe is also kept on `builtins`: a student cell that deletes this module from
# sys.modules makes the next hidden `__import__('grader_probe')` load a FRESH copy whose `_probe`
# is None; that copy finds the live one here (and reports it lost when a cell removed it too).
_LIVE = "__grader_probe_live__"
_INSTALLED = "__grader_probe_installed__"
_WATCHED = ("__init__", "compile", "fit", "evaluate", "predict", "train_on_batch", "test_on_batch", "__call__")
# Keras' Model inherits fit from its trainer classes (TensorFlowTrainer, Trainer): `type(model).__mro__[1]
# .fit(model, ...)` and `super(keras.Model, model).fit(...)` reach them, so they get the same wrappers.
_BASE_PATCHED = ("fit", "train_on_batch", "test_on_batch")


class GraderProbeLost(RuntimeError):
    """The probe was installed but a student cell removed it; the runner logs the hidden cell's
    failure ("hidden cell ... failed: GraderProbeLost") on the trusted side."""


def install(out_dir: str, array_bytes: int) -> None:
    """Patch Keras and start recording into out_dir (called once by the hidden first cell)."""
    global _probe
    _block_grader_imports()
    import keras

    setattr(builtins, _INSTALLED, True)
    _probe = _Probe(out_dir, array_bytes)
    setattr(builtins, _LIVE, _probe)
    legacy.alias_modules(keras)
    legacy.patch_optimizers(keras)
    _patch_model(keras)
    steps.patch_optimizer(keras, _probe)
    versions = {"python": sys.version.split()[0], "keras": keras.__version__,
                "numpy": np.__version__}
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        versions["tensorflow"] = getattr(tf, "__version__", "?")
    _probe.emit({"event": "hello", "versions": versions})


def at_cell(index: int) -> None:
    """Called by the hidden cell before student cell `index` (Submission cell index): checks that
    Keras is still patched (a `tamper` event and a re-patch when a previous cell undid it)."""
    probe = _live_probe()
    if probe is not None:
        probe.check_patches("at_cell", before=index)
        probe.flush_steps()
        probe.cell = index


def at_end() -> None:
    """For a hidden cell after the last student cell: the same check as at_cell."""
    probe = _live_probe()
    if probe is not None:
        probe.check_patches("at_end", before=None)
        probe.flush_steps()


def _live_probe() -> _Probe | None:
    global _probe
    if _probe is None:
        _probe = getattr(builtins, _LIVE, None)
        if _probe is None and getattr(builtins, _INSTALLED, False):
            raise GraderProbeLost("the probe was removed from the kernel by a student cell")
    return _probe


# ------------------------------------------------------------------------------ kernel plumbing


class _GraderBlocker:
    """Refuses `import grader` inside the kernel (the grader's own editable/wheel install is on
    sys.path too). A determined student can remove this; it only stops casual use."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> None:
        if name == "grader" or name.startswith("grader."):
            raise ImportError(f"No module named {name!r}")
        return None


def _block_grader_imports() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if "grader" not in getattr(f, "__module__", "")]
    sys.meta_path.insert(0, _GraderBlocker())
    for name in [m for m in sys.modules if m == "grader" or m.startswith("grader.")]:
        del sys.modules[name]


def _patch_model(keras: Any) -> None:
    model_cls = keras.Model
    originals = {name: getattr(model_cls, name) for name in _WATCHED}
    fit_sig = inspect.signature(originals["fit"])
    eval_sig = inspect.signature(originals["evaluate"])
    probe = _probe
    assert probe is not None

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        probe.guarded(probe.check_patches, "call")
        originals["__init__"](self, *args, **kwargs)
        probe.created(self)

    def compile(self: Any, *args: Any, **kwargs: Any) -> Any:
        probe.guarded(probe.check_patches, "call")
        result = originals["compile"](self, *args, **kwargs)
        probe.guarded(probe.on_compile, self, args, kwargs)
        return result

    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        probe.guarded(probe.check_patches, "call")
        if "nb_epoch" in kwargs:
            kwargs.setdefault("epochs", kwargs.pop("nb_epoch"))
        bound = fit_sig.bind(self, *args, **kwargs)  # a wrong argument raises, as in Keras
        bound.apply_defaults()
        return probe.on_fit(self, dict(bound.arguments))

    def evaluate(self: Any, *args: Any, **kwargs: Any) -> Any:
        probe.guarded(probe.check_patches, "call")
        bound = eval_sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        return probe.on_evaluate(self, dict(bound.arguments))

    def predict(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        probe.guarded(probe.check_patches, "call")
        probe.guarded(probe.on_predict, self, x)
        return originals["predict"](self, x, *args, **kwargs)

    # Steps outside fit are recorded and, like fit, do not train here: NaN shaped like Keras' answer.
    def train_on_batch(self: Any, x: Any = None, *args: Any, **kwargs: Any) -> Any:
        probe.guarded(probe.check_patches, "call")
        probe.guarded(probe.step, "train_on_batch", self, x)
        return probe.nan_result(self, kwargs.get("return_dict", False))

    def test_on_batch(self: Any, x: Any = None, *args: Any, **kwargs: Any) -> Any:
        probe.guarded(probe.check_patches, "call")
        probe.guarded(probe.step, "test_on_batch", self, x)
        return probe.nan_result(self, kwargs.get("return_dict", False))

    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        # The forward pass of a GradientTape loop: apply_gradients then says which batch it trained on.
        probe.last_input(self, args[0] if args else kwargs.get("inputs"))
        return originals["__call__"](self, *args, **kwargs)

    for name, fn in (("__init__", __init__), ("compile", compile), ("fit", fit), ("evaluate", evaluate),
                     ("predict", predict), ("train_on_batch", train_on_batch), ("test_on_batch", test_on_batch),
                     ("__call__", __call__)):
        probe.wrappers[name] = functools.wraps(originals[name])(fn)
        setattr(model_cls, name, probe.wrappers[name])
    for base in model_cls.__mro__[1:]:
        for name in _BASE_PATCHED:
            if name in vars(base):
                setattr(base, name, probe.wrappers[name])
                probe.base_patches.append((base, name, probe.wrappers[name]))
    probe.watch(model_cls)
    legacy.add_model_methods(model_cls)


# ------------------------------------------------------------------------------------ recording


class _NaNHistory(dict):
    """history.history: NaN per epoch; answers any key that looks like a loss or a metric."""

    def __init__(self, epochs: int, metric_keys: list[str]):
        self.epochs = epochs
        super().__init__()
        for name in ["loss", "accuracy", "acc", *metric_keys]:
            self[name] = [math.nan] * epochs
            self["val_" + name] = [math.nan] * epochs

    def __missing__(self, key: Any) -> list[float]:
        if isinstance(key, str) and ("acc" in key or "loss" in key or "error" in key):
            return [math.nan] * self.epochs
        raise KeyError(key)


class _Probe(steps.StepRecorder):
    def __init__(self, out_dir: str, array_bytes: int):
        self.out_dir = out_dir
        self.arrays = arrays.ArrayStore(os.path.join(out_dir, "arrays"), array_bytes)
        self.events = open(os.path.join(out_dir, "events.jsonl"), "a", encoding="utf-8")  # noqa: SIM115 (open for the kernel's life)
        self.cell: int | None = None
        self.workdir = os.getcwd()
        self._models: dict[int, tuple[Any, int]] = {}  # id(obj) -> (weakref, model_id)
        self._created: dict[int, dict] = {}
        self._births: dict[int, tuple[Any, dict]] = {}
        self._next_id = 0
        self._compiled: dict[int, dict] = {}
        self.wrappers: dict[str, Any] = {}  # Model method name -> the probe's wrapper
        self.model_cls: Any = None
        self._own_methods: dict[type, set[str]] = {}  # Keras' Model subclasses -> methods they define
        self.base_patches: list[tuple[type, str, Any]] = []  # (trainer/optimizer class, name, wrapper)
        self.init_steps()

    def emit(self, event: dict) -> None:
        self.events.write(json.dumps(names.jsonable(event)) + "\n")
        self.events.flush()

    def guarded(self, record: Any, *args: Any) -> Any:
        """A failure of the probe itself becomes a note, never the student's error."""
        try:
            return record(*args)
        except Exception as exc:
            self.emit({"event": "note", "text": f"probe failed in {record.__name__}: {exc!r}"[:300]})
            return None

    def watch(self, model_cls: type) -> None:
        """Remember the patched class and which watched methods Keras' own subclasses define."""
        self.model_cls = model_cls
        self._own_methods = {cls: {n for n in _WATCHED if n in vars(cls)} for cls in _subclasses(model_cls)}

    def check_patches(self, detected: str, before: int | None = None) -> None:
        """Put the wrappers back where student code replaced them, and say so in a `tamper` event:
        `cell` is the cell that did it (the one before `before` when noticed by a hidden cell)."""
        if self.model_cls is None:
            return
        replaced = []
        for name, wrapper in self.wrappers.items():
            if vars(self.model_cls).get(name) is not wrapper:
                replaced.append(f"Model.{name}")
                setattr(self.model_cls, name, wrapper)
        for cls, own in self._own_methods.items():  # Sequential.fit = ... shadows Model.fit
            for name in _WATCHED:
                if name in vars(cls) and name not in own:
                    replaced.append(f"{cls.__name__}.{name}")
                    try:
                        delattr(cls, name)
                    except (AttributeError, TypeError):
                        pass
        for cls, name, wrapper in self.base_patches:  # TensorFlowTrainer.fit, Optimizer.apply_gradients
            if vars(cls).get(name) is not wrapper:
                replaced.append(f"{cls.__name__}.{name}")
                setattr(cls, name, wrapper)
        if replaced:
            place = self.where() if detected == "call" else {"cell": self.cell, "line": None}
            self.emit({"event": "tamper", "detected": detected, "cell": place["cell"], "line": place["line"],
                       "before": before, "replaced": replaced[:10]})

    def where(self) -> dict:
        """Cell index, line in the cell's top-level code, and the innermost student function."""
        user_ns = _user_globals()
        cell_frame, function = None, None
        frame = sys._getframe(2)
        while frame is not None:
            code = frame.f_code
            student = frame.f_globals is user_ns or (code.co_filename.startswith(self.workdir + os.sep)
                                                     and code.co_filename != __file__)
            if student and function is None and not code.co_name.startswith("<"):
                function = code.co_name
            if frame.f_globals is user_ns:
                cell_frame = frame  # keep walking: the outermost one is the running cell
            frame = frame.f_back
        return {"cell": self.cell, "line": cell_frame.f_lineno if cell_frame else None,
                "function": function}

    def created(self, model: Any) -> None:
        """Remember where a model object was built; it gets an id only once the student uses it
        (Keras builds internal Functional models of its own)."""
        self._births[id(model)] = (weakref.ref(model), self.where())

    def model_id(self, model: Any) -> int:
        entry = self._models.get(id(model))
        if entry is not None and entry[0]() is model:
            return entry[1]
        model_id = self._next_id = self._next_id + 1
        self._models[id(model)] = (weakref.ref(model), model_id)
        birth = self._births.pop(id(model), None)
        self._created[model_id] = birth[1] if birth and birth[0]() is model else self.where()
        return model_id

    def model_record(self, model: Any) -> dict:
        model_id = self.model_id(model)
        import keras

        try:
            config = names.normalise_config(names.jsonable(keras.saving.serialize_keras_object(model)))
        except Exception as exc:  # a model Keras cannot serialise is data, not a probe crash
            config = {"unsupported": f"{type(exc).__name__}: {exc}"[:300]}
        inner = config.get("config", {}) if isinstance(config, dict) else {}
        layers = inner.get("layers", []) if isinstance(inner, dict) else []
        specs = [names.layer_spec(layer) for layer in layers
                 if isinstance(layer, dict) and layer.get("class_name") != "InputLayer"]
        return {"model_id": model_id, "class_name": type(model).__name__, "layers": specs,
                "input_shape": _input_shape(model), "config": config,
                "created": self._created.get(model_id, {})}

    def on_compile(self, model: Any, args: tuple, kwargs: dict) -> None:
        optimizer = getattr(model, "optimizer", None)
        opt = {"class_name": type(optimizer).__name__, "config": {}}
        try:
            opt["config"] = {k: names.short_float(v) for k, v in names.jsonable(optimizer.get_config()).items()}
        except Exception as exc:
            opt["config"] = {"unsupported": repr(exc)[:200]}
        if getattr(optimizer, "_grader_decay", None) is not None:
            opt["config"]["decay"] = optimizer._grader_decay
        given = dict(zip(["optimizer", "loss", "loss_weights", "metrics"], args)) | kwargs
        record = {"optimizer": opt, "loss": names.loss_record(given.get("loss")),
                  "metrics": names.metric_names(given.get("metrics")), "location": self.where()}
        self._compiled[self.model_id(model)] = record
        self.emit({"event": "compile", "model_id": self.model_id(model), "compile": record})

    def on_fit(self, model: Any, a: dict) -> Any:
        import keras

        epochs = _as_int(a.get("epochs"), 1)
        if not self.guarded(self.record_fit, model, a, epochs):
            # Still say where: the trusted side must not take a probe failure for a hidden fit.
            self.guarded(self.emit, {"event": "fit_failed", "location": self.where()})
        history = keras.callbacks.History()
        history.history = _NaNHistory(epochs, self._metric_keys(self.model_id(model)))
        history.epoch = list(range(epochs))
        history.params = {"verbose": a.get("verbose"), "epochs": epochs, "steps": None}
        history.set_model(model)
        model.history = history
        return history

    def record_fit(self, model: Any, a: dict, epochs: int) -> bool:
        location = self.where()
        notes: dict[str, str] = {}
        x, y = self.array_ref(a.get("x"), "x", notes), self.array_ref(a.get("y"), "y", notes)
        val = a.get("validation_data")
        val_refs = None
        if isinstance(val, (tuple, list)) and len(val) >= 2:
            val_refs = [self.array_ref(v, f"validation_data[{i}]", notes) for i, v in enumerate(val[:2])]
        elif val is not None:
            notes["validation_data"] = f"not arrays: {type(val).__name__}"
        self._build(model, a.get("x"))
        known = {"self", "x", "y", "batch_size", "epochs", "callbacks", "validation_split",
                 "validation_data", "shuffle", "verbose"}
        for key, value in a.items():
            if key not in known and key != "kwargs" and not _is_default(value):
                notes[key] = repr(value)[:200]
        model_id = self.model_id(model)
        self.emit({"event": "fit", "model_id": model_id, "model": self.model_record(model),
                   "compile": self._compiled.get(model_id), "epochs": epochs,
                   "batch_size": _as_int(a.get("batch_size"), None),
                   "validation_split": _as_float(a.get("validation_split"), 0.0),
                   "x": x, "y": y, "validation_data": val_refs,
                   "callbacks": [names.callback_record(cb) for cb in (a.get("callbacks") or [])],
                   "shuffle": bool(a.get("shuffle", True)), "other_kwargs": notes,
                   "location": location})
        return True

    def nan_result(self, model: Any, return_dict: Any) -> Any:
        keys = ["loss", *self._metric_keys(self.model_id(model))]
        if return_dict:
            return {k: math.nan for k in keys}
        return math.nan if len(keys) == 1 else [math.nan] * len(keys)

    def on_evaluate(self, model: Any, a: dict) -> Any:
        self.guarded(self.record_evaluate, model, a)
        keys = ["loss", *self._metric_keys(self.model_id(model))]
        if a.get("return_dict"):
            return {k: math.nan for k in keys}
        return math.nan if len(keys) == 1 else [math.nan] * len(keys)

    def record_evaluate(self, model: Any, a: dict) -> None:
        notes: dict[str, str] = {}
        self.emit({"event": "evaluate", "kind": "evaluate", "model_id": self.model_id(model),
                   "x": self.array_ref(a.get("x"), "x", notes), "y": self.array_ref(a.get("y"), "y", notes),
                   "location": self.where()})

    def on_predict(self, model: Any, x: Any) -> None:
        # Predictions on a handful of rows (one image in a loop) are not worth an .npy each.
        self.emit({"event": "predict", "kind": "predict", "model_id": self.model_id(model),
                   "x": self.array_ref(x, "x", {}, min_rows=100), "y": None, "location": self.where()})

    def _metric_keys(self, model_id: int) -> list[str]:
        compiled = self._compiled.get(model_id) or {}
        keys = []
        for m in compiled.get("metrics", []):
            name = m if isinstance(m, str) else str(m)
            keys.append("accuracy" if name in ("acc", "accuracy") else names.snake(name))
        return keys

    def _build(self, model: Any, x: Any) -> None:
        """Build an unbuilt Sequential from the data shape, as a real fit would, so the config
        carries input shapes and later `model.summary()` works."""
        if getattr(model, "built", True) or not hasattr(x, "shape"):
            return
        try:
            model.build((None, *tuple(x.shape[1:])))
        except Exception:
            pass

    def array_ref(self, value: Any, name: str, notes: dict[str, str], min_rows: int = 0) -> dict | None:
        return self.arrays.ref(value, name, notes, min_rows)


# ------------------------------------------------------------------------------- normalisation


def _subclasses(cls: type) -> list[type]:
    found, todo = [], list(cls.__subclasses__())
    while todo:
        sub = todo.pop()
        if sub not in found:
            found.append(sub)
            todo += sub.__subclasses__()
    return found


def _user_globals() -> Any:
    try:
        return get_ipython().user_global_ns  # type: ignore[name-defined]
    except NameError:
        import __main__

        return vars(__main__)


def _input_shape(model: Any) -> list | None:
    try:
        shape = model.input_shape
        if isinstance(shape, tuple):
            return list(shape)
    except Exception:
        pass
    return None


def _is_default(value: Any) -> bool:
    return value is None or (type(value) in (int, float, bool) and value in (0, 1))


def _as_int(value: Any, default: Any) -> Any:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _as_float(value: Any, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default
