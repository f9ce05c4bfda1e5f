"""The allowlist between recorded configs and live Keras objects.

Configs come from the student's process, so they are untrusted: every dict is walked and checked
against the standard Keras classes and names below BEFORE any Keras deserializer sees it, and the
deserializers then run in safe mode. Anything else (Lambda, custom classes, the probe's
``{"unsupported": ...}`` markers, modules outside keras) raises `NotReproducible` with a reason.
"""

from __future__ import annotations

import inspect
from typing import Any

import keras


class NotReproducible(Exception):
    """The grader cannot rebuild or retrain this run; `reason` is English (rules translate it)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


LAYERS = frozenset({
    "InputLayer", "Input", "Dense", "Dropout", "Flatten", "Reshape", "BatchNormalization",
    "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "LayerNormalization", "Conv2D", "MaxPooling2D", "AveragePooling2D",
    "GlobalAveragePooling2D", "SpatialDropout2D",
})
INITIALIZERS = frozenset({
    "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform", "TruncatedNormal", "GlorotNormal",
    "GlorotUniform", "HeNormal", "HeUniform", "LecunNormal", "LecunUniform", "VarianceScaling",
    "Orthogonal", "Identity",
})
INITIALIZER_NAMES = frozenset({
    "zeros", "zero", "ones", "one", "constant", "random_normal", "random_uniform", "truncated_normal",
    "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform",
    "variance_scaling", "orthogonal", "identity", "normal", "uniform",
}) | INITIALIZERS
REGULARIZERS = frozenset({"L1", "L2", "L1L2"})
REGULARIZER_NAMES = frozenset({"l1", "l2", "l1l2", "l1_l2"}) | REGULARIZERS
CONSTRAINTS = frozenset({"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"})
CONSTRAINT_NAMES = frozenset({"max_norm", "min_max_norm", "non_neg", "unit_norm"}) | CONSTRAINTS
ACTIVATIONS = frozenset({
    "relu", "sigmoid", "softmax", "tanh", "elu", "selu", "softplus", "softsign", "swish", "silu",
    "gelu", "linear", "exponential", "hard_sigmoid", "hard_silu", "hard_swish", "leaky_relu",
    "relu6", "mish", "log_softmax",
})
SCHEDULES = frozenset({
    "ExponentialDecay", "PiecewiseConstantDecay", "PolynomialDecay", "InverseTimeDecay",
    "CosineDecay", "CosineDecayRestarts",
})
OPTIMIZERS = frozenset({
    "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "Lion",
})
LOSSES = frozenset({
    "SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy",
    "MeanSquaredError", "MeanAbsoluteError", "KLDivergence", "Hinge", "SquaredHinge",
    "CategoricalHinge", "Huber", "Poisson", "CategoricalFocalCrossentropy",
})
LOSS_NAMES = frozenset({
    "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
    "mean_squared_error", "mse", "mean_absolute_error", "mae", "kl_divergence", "kld",
    "kullback_leibler_divergence", "hinge", "squared_hinge", "categorical_hinge", "huber", "poisson",
    "categorical_focal_crossentropy",
})
CALLBACKS = frozenset({"EarlyStopping", "ReduceLROnPlateau"})
_MISC = frozenset({"DTypePolicy", "FloatDTypePolicy"})
# Keras imports the "module" of a serialized object: only its public modules may be named.
_MODULES = frozenset({
    "keras", "keras.layers", "keras.initializers", "keras.regularizers", "keras.constraints",
    "keras.losses", "keras.optimizers", "keras.optimizers.schedules", "keras.activations",
})
# Keys whose string values Keras resolves by name; each is checked against its own name list.
_NAMED = (
    ("activation", ACTIVATIONS),
    ("initializer", INITIALIZER_NAMES),
    ("regularizer", REGULARIZER_NAMES),
    ("constraint", CONSTRAINT_NAMES),
)


def check_config(node: Any, path: str = "model", classes: frozenset[str] | None = None) -> None:
    """Raise NotReproducible unless every object named anywhere in `node` is allowlisted."""
    allowed = classes or (LAYERS | INITIALIZERS | REGULARIZERS | CONSTRAINTS | _MISC)
    if isinstance(node, list):
        for i, item in enumerate(node):
            check_config(item, f"{path}[{i}]", classes)
        return
    if not isinstance(node, dict):
        return
    if "unsupported" in node:
        raise NotReproducible(f"{path}: the probe could not record this object ({node['unsupported']!r})")
    if "class_name" in node:
        _check_object(node, path, allowed)
    for key, value in node.items():
        if key in ("class_name", "module", "registered_name"):
            continue
        if isinstance(value, str):
            _check_named(key, value, path)
        else:
            check_config(value, f"{path}.{key}", classes)


def _check_object(node: dict, path: str, allowed: frozenset[str]) -> None:
    name = node["class_name"]
    where = f"{path} ({name})"
    if name == "__keras_tensor__":  # a functional graph edge: shape, dtype, keras_history only
        cfg = node.get("config")
        if not isinstance(cfg, dict) or set(cfg) - {"shape", "dtype", "keras_history"}:
            raise NotReproducible(f"{where}: unexpected tensor reference")
        return
    if name == "Lambda" or name.startswith("__"):
        raise NotReproducible(f"{where}: Lambda layers and serialized Python code are not rebuilt")
    module = node.get("module")
    if module is not None and module not in _MODULES:
        raise NotReproducible(f"{where}: class from module {module!r}, outside Keras' public modules")
    registered = node.get("registered_name")
    if registered not in (None, name):
        raise NotReproducible(f"{where}: custom registered class {registered!r}")
    if name not in allowed:
        raise NotReproducible(f"{where}: class {name!r} is not a standard Keras class the grader rebuilds")


def _check_named(key: str, value: str, path: str) -> None:
    for suffix, names in _NAMED:
        if (key == suffix or key.endswith("_" + suffix)) and value not in names:
            raise NotReproducible(f"{path}.{key}: {value!r} is not a standard Keras {suffix}")


def rebuild_model(record: Any, input_shape: tuple[int | None, ...] | list[int | None]) -> keras.Model:
    """A fresh, untrained Keras model from a ModelRecord (weights from the current global seed)."""
    top = record.config if isinstance(record.config, dict) else {}
    if "unsupported" in top:
        raise NotReproducible(f"the probe could not record the model ({top['unsupported']!r})")
    kind = top.get("class_name", record.class_name)
    config = top.get("config")
    if kind not in ("Sequential", "Functional", "Model") or not isinstance(config, dict):
        raise NotReproducible(f"model of class {kind!r}: only Sequential and Functional models are rebuilt")
    check_config(config)
    try:
        from keras.src.saving.serialization_lib import SafeModeScope  # no public alias in Keras 3

        with SafeModeScope(True):
            if kind == "Sequential":
                model = keras.Sequential.from_config(config)
            else:
                model = keras.Model.from_config(config)
        if not model.built:  # no Input in the config: Keras would build it at the first fit
            shape = tuple(input_shape)
            sample = shape[1:] if shape and shape[0] is None else shape
            model.build((None, *sample))
    except NotReproducible:
        raise
    except Exception as exc:  # a config Keras itself rejects: the student's model is broken or odd
        raise NotReproducible(f"Keras could not rebuild the model: {type(exc).__name__}: {exc}") from exc
    return model


def build_optimizer(record: dict[str, Any]) -> keras.optimizers.Optimizer:
    """The optimizer from CompileRecord.optimizer ({"class_name", "config"})."""
    if isinstance(record, str):
        record = {"class_name": record, "config": {}}
    if not isinstance(record, dict):
        raise NotReproducible(f"optimizer recorded as {record!r}")
    name = record.get("class_name")
    if isinstance(name, str) and name.lower() in {o.lower() for o in OPTIMIZERS}:
        name = next(o for o in OPTIMIZERS if o.lower() == name.lower())
    if name not in OPTIMIZERS:
        raise NotReproducible(f"optimizer {name!r} is not a standard Keras optimizer")
    config = dict(record.get("config") or {})
    if "lr" in config:  # Keras 2 spelling (SGD(lr=0.01)); Keras 3 only knows learning_rate
        config.setdefault("learning_rate", config["lr"])
        del config["lr"]
    check_config(config, f"optimizer {name}", SCHEDULES)
    decay = config.pop("decay", None)
    if decay and not isinstance(config.get("learning_rate"), dict):
        # Keras 2's decay, lr / (1 + decay * iterations), is exactly InverseTimeDecay with step 1.
        config["learning_rate"] = keras.optimizers.schedules.InverseTimeDecay(
            float(config.get("learning_rate", 0.01)), decay_steps=1, decay_rate=float(decay))
    elif decay:
        raise NotReproducible(f"optimizer {name}: Keras 2 'decay' on top of a learning-rate schedule")
    try:
        return keras.optimizers.deserialize({"class_name": name, "config": config})
    except Exception as exc:
        raise NotReproducible(f"optimizer {name}: {type(exc).__name__}: {exc}") from exc


def build_loss(loss: Any) -> Any:
    """The loss as compiled: a Keras loss name (string) or a Loss object from its config."""
    if isinstance(loss, str):
        if loss in LOSSES:  # the probe names a Loss object by its class
            return keras.losses.get(loss)
        if loss not in LOSS_NAMES:
            raise NotReproducible(f"loss {loss!r} is not a standard Keras loss")
        return loss
    if isinstance(loss, dict):
        if "unsupported" in loss:
            raise NotReproducible(f"loss could not be recorded ({loss['unsupported']!r})")
        name = loss.get("class_name")
        if name == "function" and loss.get("config") in LOSS_NAMES:
            return loss["config"]
        check_config(loss, "loss", LOSSES)
        try:
            from keras.src.saving.serialization_lib import SafeModeScope

            with SafeModeScope(True):
                return keras.losses.deserialize({"class_name": name, "config": loss.get("config") or {}})
        except Exception as exc:
            raise NotReproducible(f"loss {name}: {type(exc).__name__}: {exc}") from exc
    raise NotReproducible(f"loss recorded as {loss!r}: only Keras losses by name or class are rebuilt")


def build_callbacks(records: list[Any]) -> tuple[list[keras.callbacks.Callback], list[str]]:
    """EarlyStopping / ReduceLROnPlateau instances, and notes about every callback left out."""
    callbacks, notes = [], []
    for rec in records:
        if rec.class_name not in CALLBACKS:
            notes.append(f"callback {rec.class_name} ignored (not replayed by the grader)")
            continue
        cls = getattr(keras.callbacks, rec.class_name)
        params = set(inspect.signature(cls.__init__).parameters) - {"self", "verbose"}
        config = {k: v for k, v in (rec.config or {}).items() if k in params}
        check_config(config, f"callback {rec.class_name}")
        monitor = str(config.get("monitor", "val_loss"))
        if config.get("mode", "auto") == "auto":
            # Keras 3 asks the compiled metrics for the direction; the grader's model has none.
            if monitor.endswith("loss"):
                config["mode"] = "min"
            elif monitor.endswith("acc") or monitor.endswith("accuracy"):
                config["mode"] = "max"
        try:
            callbacks.append(cls(**config))
        except Exception as exc:
            raise NotReproducible(f"callback {rec.class_name}: {type(exc).__name__}: {exc}") from exc
    return callbacks, notes
