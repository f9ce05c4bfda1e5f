"""The data of one recorded fit, checked and split the way the assignment mandates.

The student's own arrays are used (their preprocessing is part of their work), but only after the
row fingerprints prove every row is a Fashion-MNIST TRAIN image and the labels are the data set's
labels. Then the mandated split applies whatever the student did: the first 80% trains, the last
20% validates. The test set is rebuilt from the grader's own copy, transformed like the student's
training data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grader.capture.trace import ArrayRef, FitRecord
from grader.data import ROW_BOTH, ROW_TRAIN, FashionMNIST, RowIndex, validation_split_index
from grader.retrain.allowlist import NotReproducible
from grader.retrain.trainer import class_indices

VALIDATION_SHARE = 0.2


class ForgedLabels(Exception):
    """The labels the student trained on are not Fashion-MNIST's labels for those images."""


@dataclass
class FitData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    digests: list[str] = field(default_factory=list)  # the arrays used, for the cache key


def load_array(ref: ArrayRef | None, arrays_dir: Path, what: str) -> np.ndarray:
    """The saved .npy of an ArrayRef (never pickled objects)."""
    if ref is None:
        raise NotReproducible(f"the fit's {what} was not recorded")
    if not ref.stored:
        raise NotReproducible(f"the fit's {what} {tuple(ref.shape)} was too large to be saved")
    path = arrays_dir / f"{ref.digest}.npy"
    if not path.is_file():
        raise NotReproducible(f"the fit's {what} is missing from the capture ({path.name})")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise NotReproducible(f"the fit's {what} could not be read: {exc}") from exc


def training_arrays(fit: FitRecord, arrays_dir: Path, index: RowIndex) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The student's training array: x, or concat(x, x_val) when validation_data is a manual split."""
    x = load_array(fit.x, arrays_dir, "x")
    y = load_array(fit.y, arrays_dir, "y")
    digests = [fit.x.digest, fit.y.digest]
    if fit.validation_data and len(fit.validation_data) >= 2:
        try:
            xv = load_array(fit.validation_data[0], arrays_dir, "validation x")
            yv = load_array(fit.validation_data[1], arrays_dir, "validation y")
        except NotReproducible:
            return x, y, digests
        kinds = index.match(xv).kind
        manual_split = len(kinds) > 0 and bool(np.isin(kinds, (ROW_TRAIN, ROW_BOTH)).all())
        if manual_split and xv.shape[1:] == x.shape[1:] and yv.shape[1:] == y.shape[1:]:
            x, y = np.concatenate([x, xv]), np.concatenate([y, yv])
            digests += [fit.validation_data[0].digest, fit.validation_data[1].digest]
    return x, y, digests


def prepare_fit(fit: FitRecord, arrays_dir: Path, data: FashionMNIST, index: RowIndex) -> FitData:
    """Checked, mandated-split data of one fit; raises NotReproducible or ForgedLabels."""
    x, y, digests = training_arrays(fit, arrays_dir, index)
    if len(x) != len(y):
        raise ForgedLabels(f"x has {len(x)} rows but y has {len(y)}")
    match = index.match(x)
    counts = match.summary()
    if counts["test"]:
        raise NotReproducible(
            f"test rows in training data: {counts['test']} of {counts['total']} rows are Fashion-MNIST test images")
    if counts["other"]:
        raise NotReproducible(
            f"{counts['other']} of {counts['total']} training rows are not Fashion-MNIST training images "
            "(altered or non-affine preprocessing cannot be checked against the data set)")
    labels = class_indices(y)
    expected = data.y_train[match.index].astype(np.int32)
    wrong = int(np.count_nonzero(labels != expected))
    if wrong:
        raise ForgedLabels(f"{wrong} of {len(labels)} labels differ from Fashion-MNIST's labels for those images")
    if x.dtype.kind == "f" and x.dtype != np.float32:
        x = x.astype(np.float32)
    try:
        split = validation_split_index(len(x), VALIDATION_SHARE)
    except ValueError as exc:
        raise NotReproducible(f"{len(x)} rows cannot be split 80/20") from exc
    return FitData(x[:split], y[:split], x[split:], y[split:], digests)


def transformed_test(data: FashionMNIST, x_like: np.ndarray, y_like: np.ndarray, index: RowIndex
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The grader's x_test/y_test in the student's format: same affine scaling, shape and dtypes."""
    match = index.match(x_like[: min(len(x_like), 2000)])
    scale = 1.0 if match.scale is None else match.scale
    offset = 0.0 if match.offset is None else match.offset
    x = data.x_test.astype(np.float64) * scale + offset
    if x_like.dtype.kind in "iu":
        x = np.rint(x)
    x = x.astype(x_like.dtype if x_like.dtype != np.float64 else np.float32)
    x = x.reshape((len(data.x_test), *x_like.shape[1:]))
    y_like = np.asarray(y_like)
    if y_like.ndim == 2 and y_like.shape[1] > 1:
        y = np.eye(y_like.shape[1], dtype=y_like.dtype)[data.y_test]
    else:
        y = data.y_test.astype(y_like.dtype).reshape((len(data.y_test), *y_like.shape[1:]))
    return x, y
