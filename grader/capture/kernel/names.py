"""Names and JSON for Keras objects, as the probe records them (runs inside the student kernel too).

Activations as Keras 3 names (tf.nn.softmax -> "softmax"), initializer classes as snake names
(RandomNormal -> random_normal, 'zero' -> zeros), regularizer summaries ("l2(0.001)"), model configs
made JSON-safe so that they deserialise on the trusted side. stdlib + numpy (+ keras, lazily) only.
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Any

import numpy as np

ACTIVATION_ALIASES = {"softmax_v2": "softmax", "log_softmax_v2": "log_softmax", "swish": "silu",
                       "relu6": "relu6", "leaky_relu": "leaky_relu"}


def snake(name: str) -> str:
    """RandomNormal -> random_normal, GlorotUniform -> glorot_uniform."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def jsonable(obj: Any, depth: int = 0) -> Any:
    """Plain JSON data only; anything else becomes {"unsupported": repr} (never pickled)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj if not isinstance(obj, str) else obj[:2000]
    if isinstance(obj, (int, float)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if depth > 30:
        return {"unsupported": "too deep"}
    if isinstance(obj, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, depth + 1) for v in obj]
    return {"unsupported": repr(obj)[:200]}


def activation_name(value: Any) -> Any:
    if isinstance(value, str):
        return ACTIVATION_ALIASES.get(value, value)
    if isinstance(value, dict) and value.get("class_name") == "function" and isinstance(value.get("config"), str):
        name = ACTIVATION_ALIASES.get(value["config"], value["config"])
        try:
            import keras

            keras.activations.get(name)
            return name
        except Exception:
            return {"unsupported": f"activation function {value['config']}"}
    return value


def normalise_config(config: Any) -> Any:
    """Activations as Keras names everywhere, so the config deserialises on the trusted side."""
    if isinstance(config, dict):
        return {k: (activation_name(v) if k in ("activation", "recurrent_activation") else normalise_config(v))
                for k, v in config.items()}
    if isinstance(config, list):
        return [normalise_config(v) for v in config]
    return config


def initializer_name(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("class_name"), str):
        value = value["class_name"]
    if not isinstance(value, str):
        return None
    name = snake(value)
    return {"zero": "zeros", "one": "ones", "normal": "random_normal",
            "uniform": "random_uniform"}.get(name, name)


def regularizer_summary(value: Any) -> str | None:
    if not isinstance(value, dict):
        return value if isinstance(value, str) else None
    cfg = value.get("config") or {}
    name = snake(str(value.get("class_name", "?")))
    if isinstance(cfg, dict) and name in ("l1", "l2") and name in cfg:
        return f"{name}({cfg[name]:g})" if isinstance(cfg[name], (int, float)) else name
    if isinstance(cfg, dict):
        return f"{name}(" + ", ".join(f"{k}={v}" for k, v in cfg.items()) + ")"
    return name


def layer_spec(layer: dict) -> dict:
    cfg = layer.get("config") if isinstance(layer.get("config"), dict) else {}
    activation = cfg.get("activation")
    if isinstance(activation, dict) and isinstance(activation.get("class_name"), str):
        activation = snake(activation["class_name"])
    return {"type": str(layer.get("class_name")), "units": cfg.get("units"),
            "activation": activation if isinstance(activation, str) else None,
            "kernel_initializer": initializer_name(cfg.get("kernel_initializer")),
            "kernel_regularizer": regularizer_summary(cfg.get("kernel_regularizer")),
            "rate": cfg.get("rate"), "config": cfg}


def callable_name(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return [callable_name(v) for v in value]
    if isinstance(value, dict):
        return {str(k): callable_name(v) for k, v in value.items()}
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        return value.__name__
    return type(value).__name__


def loss_record(value: Any) -> Any:
    """A loss by name, or a Loss object as {"class_name", "config"} so settings such as
    from_logits=True reach the trusted retrain (which rebuilds it through its allowlist)."""
    get_config = getattr(value, "get_config", None)
    if value is None or isinstance(value, str) or inspect.isfunction(value) or get_config is None:
        return callable_name(value)
    try:
        return {"class_name": type(value).__name__, "config": jsonable(get_config())}
    except Exception:
        return callable_name(value)


def metric_names(metrics: Any) -> list:
    if metrics is None:
        return []
    if isinstance(metrics, dict):
        metrics = [m for v in metrics.values() for m in (v if isinstance(v, (list, tuple)) else [v])]
    if not isinstance(metrics, (list, tuple)):
        metrics = [metrics]
    return [callable_name(m) for m in metrics]


def callback_record(cb: Any) -> dict:
    config = {k: v for k, v in vars(cb).items()
              if not k.startswith("_") and isinstance(v, (int, float, str, bool, type(None)))
              and k not in ("wait", "stopped_epoch", "best", "cooldown_counter", "verbose")}
    return {"class_name": type(cb).__name__, "config": config}


def short_float(value: Any) -> Any:
    """0.10000000149011612 (a float32 learning rate) -> 0.1."""
    if isinstance(value, float) and math.isfinite(value):
        short = float(repr(np.float32(value)).removeprefix("np.float32(").rstrip(")"))
        return short if float(np.float32(short)) == value else value
    return value
