"""Keras 2 idioms of 2019-era notebooks, made to run on Keras 3 inside the student kernel.

Part of the probe (copied beside it into the kernel as `grader_probe_legacy`; stdlib + numpy +
keras only). `SGD(lr=0.1, decay=1e-6)` keeps its decay as `_grader_decay`, which the probe records
and the trusted retrain replays as InverseTimeDecay.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import numpy as np

_LEGACY_MODULES = {
    "keras.layers.core": "keras.layers", "keras.layers.advanced_activations": "keras.layers",
    "keras.layers.normalization": "keras.layers", "keras.layers.convolutional": "keras.layers",
    "keras.layers.pooling": "keras.layers", "keras.utils.np_utils": "keras.utils",
}


def alias_modules(keras: Any) -> None:
    """Keras 2 module paths and lower-case optimizer names, mapped onto Keras 3."""
    import importlib

    for old, new in _LEGACY_MODULES.items():
        sys.modules.setdefault(old, importlib.import_module(new))
    for name in ("SGD", "Adam", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam"):
        if not hasattr(keras.optimizers, name.lower()):  # Keras 2.2: `from keras.optimizers import adam`
            setattr(keras.optimizers, name.lower(), getattr(keras.optimizers, name))
    legacy = getattr(keras.optimizers, "legacy", None)
    if legacy is not None:  # Keras 3 ships stubs that raise; map them to the real classes
        for name in ("SGD", "Adam", "RMSprop", "Adagrad", "Ftrl", "Optimizer"):
            setattr(legacy, name, getattr(keras.optimizers, name))


def patch_optimizers(keras: Any) -> None:
    """`SGD(lr=0.1, decay=1e-6)` as in Keras 2: lr -> learning_rate, decay kept as a note."""
    base = keras.optimizers.Optimizer
    classes = {c for c in vars(keras.optimizers).values() if isinstance(c, type) and issubclass(c, base)}
    for cls in classes:
        if "__init__" not in vars(cls):
            continue
        original = cls.__init__

        def init(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> None:
            if "lr" in kwargs:
                kwargs.setdefault("learning_rate", kwargs.pop("lr"))
            decay = kwargs.pop("decay", None)
            __original(self, *args, **kwargs)
            if decay is not None:
                self._grader_decay = decay

        cls.__init__ = functools.wraps(original)(init)


def add_model_methods(model_cls: Any) -> None:
    """Keras 2 names removed in Keras 3, routed to the (probed) modern methods."""
    model_cls.fit_generator = lambda self, generator, *a, **k: self.fit(generator, *a, **k)
    model_cls.evaluate_generator = lambda self, generator, *a, **k: self.evaluate(generator, *a, **k)
    model_cls.predict_generator = lambda self, generator, *a, **k: self.predict(generator, *a, **k)
    model_cls.predict_classes = lambda self, x, *a, **k: np.argmax(self.predict(x, *a, **k), axis=-1)
    model_cls.predict_proba = lambda self, x, *a, **k: self.predict(x, *a, **k)
