"""Fashion-MNIST: loading, the canonical 80/20 split, and row fingerprints.

Loading reads the four original IDX ``.gz`` files with gzip + numpy (no TensorFlow import), from the
first place that holds a valid copy. Row fingerprints tell, for any array a student fed to Keras,
which rows are Fashion-MNIST train rows, test rows, or something else, whatever the dtype, scaling,
global standardisation, shape, order or subset.
"""

from __future__ import annotations

import filecmp
import functools
import gzip
import math
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.errors import DataError

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_DATA_DIR = "GRADER_DATA_DIR"
KERAS_DOWNLOAD = "keras-download"
# The names Keras' downloader uses; Debian's package ships the same names.
FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
_SHAPES = {
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
    "x_test": (10000, 28, 28),
    "y_test": (10000,),
}


@dataclass(frozen=True)
class FashionMNIST:
    """The data set as Keras' ``fashion_mnist.load_data()`` returns it; arrays are read-only."""

    x_train: np.ndarray  # (60000, 28, 28) uint8
    y_train: np.ndarray  # (60000,) uint8
    x_test: np.ndarray  # (10000, 28, 28) uint8
    y_test: np.ndarray  # (10000,) uint8
    source: str  # the folder it was read from, or "keras-download"


# ---------------------------------------------------------------------------------------- loading


def default_keras_home() -> Path:
    """Keras' base folder as Keras 3 resolves it at import: $KERAS_HOME, ~/.keras, /tmp/.keras."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"])
    home = os.path.expanduser("~")
    return Path(home if os.access(home, os.W_OK) else "/tmp") / ".keras"


def _keras_dataset_dir(home: Path) -> Path:
    return home / "datasets" / "fashion-mnist"


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """One IDX file (magic 0x08 0x0N: unsigned bytes, N dimensions) as a read-only uint8 array."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc})") from exc
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x800 | ndim:
        raise DataError(f"{path}: IDX magic {magic:#010x}, expected {0x800 | ndim:#010x}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) - header != math.prod(dims):
        raise DataError(f"{path}: {len(raw) - header} data bytes, header announces {dims}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _checked(arrays: dict[str, np.ndarray], source: str) -> FashionMNIST:
    for name, shape in _SHAPES.items():
        arr = np.asarray(arrays[name])
        if arr.shape != shape or arr.dtype != np.uint8:
            raise DataError(f"{source}: {name} is {arr.dtype}{arr.shape}, expected uint8{shape}")
        if name.startswith("y") and arr.max() > 9:
            raise DataError(f"{source}: {name} holds label {arr.max()}, expected 0-9")
        arr.setflags(write=False)  # shared by every caller through the cache
        arrays[name] = arr
    return FashionMNIST(source=source, **arrays)


@functools.lru_cache(maxsize=4)
def _load_folder(folder: str) -> FashionMNIST:
    arrays = {name: _read_idx(Path(folder) / fname, ndim=3 if name[0] == "x" else 1)
              for name, fname in FILES.items()}
    return _checked(arrays, folder)


@functools.lru_cache(maxsize=1)
def _load_keras_download() -> FashionMNIST:
    from keras.datasets import fashion_mnist  # imports TensorFlow: last resort only

    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return _checked({k: np.array(v) for k, v in arrays.items()}, KERAS_DOWNLOAD)


def _places(data_dir: str | Path | None) -> list[tuple[str, Path | None]]:
    """Where to look, in order; None stands for Keras' downloader."""
    if data_dir is not None:
        return [("data_dir argument", Path(data_dir))]
    places: list[tuple[str, Path | None]] = []
    if os.environ.get(ENV_DATA_DIR):
        places.append((f"${ENV_DATA_DIR}", Path(os.environ[ENV_DATA_DIR])))
    places.append(("Keras cache", _keras_dataset_dir(default_keras_home())))
    places.append(("Debian package", DEBIAN_DIR))
    places.append(("Keras downloader", None))
    return places


def load_fashion_mnist(data_dir: str | Path | None = None) -> FashionMNIST:
    """Fashion-MNIST from ``data_dir`` only, or else from the first valid place among
    $GRADER_DATA_DIR, Keras' cache, Debian's /usr/share/datasets/fashion-mnist, Keras' downloader.

    Raises DataError naming every place it looked when none holds a valid copy.
    """
    problems = []
    for label, folder in _places(data_dir):
        if folder is None:
            try:
                return _load_keras_download()
            except Exception as exc:  # any failure of a download is one more place that failed
                problems.append(f"keras.datasets.fashion_mnist.load_data() ({label}): "
                                f"{type(exc).__name__}: {exc}")
            continue
        missing = [f for f in FILES.values() if not (folder / f).is_file()]
        if missing:
            problems.append(f"{folder} ({label}): missing {', '.join(missing)}")
            continue
        try:
            return _load_folder(str(folder.resolve()))
        except DataError as exc:
            problems.append(f"{folder} ({label}): {exc}")
    raise DataError("Fashion-MNIST not found or invalid. Looked in:\n  - " + "\n  - ".join(problems)
                    + f"\nPut the four files ({', '.join(FILES.values())}) in a folder and pass it"
                    f" with --data-dir or ${ENV_DATA_DIR}.")


def seed_keras_cache(data_dir: str | Path | None = None,
                     keras_home: str | Path | None = None) -> Path:
    """Copy the four original files into Keras' cache so that student code calling
    ``keras.datasets.fashion_mnist.load_data()`` works offline; returns that folder.

    Idempotent: identical files already there are left alone. Copies go through a temporary file
    and a rename, so kernels that start while seeding never see a half-written file.
    """
    data = load_fashion_mnist(data_dir)
    downloaded = data.source == KERAS_DOWNLOAD
    source = _keras_dataset_dir(default_keras_home()) if downloaded else Path(data.source)
    target = _keras_dataset_dir(Path(keras_home) if keras_home else default_keras_home())
    target.mkdir(parents=True, exist_ok=True)
    if source.resolve() == target.resolve():
        return target
    for fname in FILES.values():
        src, dst = source / fname, target / fname
        if dst.is_file() and filecmp.cmp(src, dst, shallow=False):
            continue
        fd, tmp = tempfile.mkstemp(dir=target, prefix=f".{fname}.")
        os.close(fd)
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    return target


# ------------------------------------------------------------------------------------ the split


def validation_split_index(n: int, validation_split: float = 0.2) -> int:
    """First row of the validation part when Keras 3 ``fit(validation_split=...)`` splits n rows.

    Same arithmetic as keras/src/trainers/data_adapters/array_slicing.py train_validation_split:
    train = [:i], validation = [i:], taken before any shuffling. Raises ValueError where Keras does.
    """
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
    split_at = math.floor(n * (1.0 - validation_split))
    if split_at == 0 or split_at == n:
        raise ValueError(f"{n} rows cannot be split with validation_split={validation_split}")
    return split_at


def canonical_split(data: FashionMNIST, validation_split: float = 0.2
                    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_tr, y_tr), (x_val, y_val)): the mandated split, the last 20% of x_train as validation."""
    i = validation_split_index(len(data.x_train), validation_split)
    return (data.x_train[:i], data.y_train[:i]), (data.x_train[i:], data.y_train[i:])


# ------------------------------------------------------------------------------ row fingerprints

ROW_OTHER, ROW_TRAIN, ROW_TEST, ROW_BOTH = 0, 1, 2, 3  # BOTH: the same image is in train and test
_PIXELS = 28 * 28
_SAMPLE = 1 << 18  # values sampled to find the affine map; np.unique of all 55M would take seconds
_MAX_DISTINCT = 1024  # most frequent sampled values tried as levels
_MIN_FIT = 0.5  # share of sampled values that must sit on levels for the map to count as found
_CHUNK = 4096  # rows per step when recovering pixel levels (keeps temporaries in cache, not in RAM)


@dataclass(frozen=True)
class RowMatch:
    """Per row of a matched array: which Fashion-MNIST split it comes from, and where."""

    kind: np.ndarray  # (n,) int8 of ROW_* codes
    index: np.ndarray  # (n,) int32: into x_train (TRAIN, BOTH rows), into x_test (TEST), else -1
    scale: float | None  # array ~= scale * uint8_pixels + offset; None when no such map was found
    offset: float | None

    def summary(self) -> dict[str, int]:
        counts = np.bincount(self.kind, minlength=4)
        return {"train": int(counts[ROW_TRAIN]), "test": int(counts[ROW_TEST]),
                "both": int(counts[ROW_BOTH]), "other": int(counts[ROW_OTHER]),
                "total": len(self.kind)}


def _row_hashes(rows: np.ndarray, seed: int) -> np.ndarray:
    """A 64-bit hash per row of a C-contiguous (n, 784) uint8 array (98 uint64 words per row)."""
    words = rows.view(np.uint64)
    mult = np.random.default_rng(seed).integers(1, 2**63, words.shape[1], dtype=np.uint64) | 1
    mixed = (words ^ (words >> np.uint64(29))) * mult  # wraps mod 2**64, as intended
    h = mixed.sum(axis=1, dtype=np.uint64)
    return h ^ (h >> np.uint64(31))


class RowIndex:
    """Hashes of the 70,000 Fashion-MNIST images; ``match`` looks up the rows of any array."""

    def __init__(self, data: FashionMNIST):
        self._train = np.ascontiguousarray(data.x_train.reshape(-1, _PIXELS))
        self._test = np.ascontiguousarray(data.x_test.reshape(-1, _PIXELS))
        self._words = np.concatenate([self._train, self._test]).view(np.uint64)  # train, then test
        for seed in range(4):
            if self._build(seed):
                return
        raise DataError(f"{data.source}: row hashes collide for four seeds; cannot index rows")

    @classmethod
    def from_dataset(cls, data: FashionMNIST) -> RowIndex:
        return cls(data)

    def _build(self, seed: int) -> bool:
        """Index both splits under one hash seed; False if two different images share a hash."""
        self._seed = seed
        uniques = []
        for rows in (self._train, self._test):
            h = _row_hashes(rows, seed)
            order = np.argsort(h, kind="stable")
            same = np.flatnonzero(h[order][1:] == h[order][:-1])
            if not np.array_equal(rows[order[same]], rows[order[same + 1]]):
                return False
            uniques.append(np.unique(h, return_index=True))  # first index of each distinct image
        (h_train, first_train), (h_test, first_test) = uniques
        self._hashes = np.union1d(h_train, h_test)
        self._train_of = np.full(len(self._hashes), -1, np.int32)
        self._test_of = np.full(len(self._hashes), -1, np.int32)
        self._train_of[np.searchsorted(self._hashes, h_train)] = first_train
        self._test_of[np.searchsorted(self._hashes, h_test)] = first_test
        both = (self._train_of >= 0) & (self._test_of >= 0)
        return np.array_equal(self._train[self._train_of[both]], self._test[self._test_of[both]])

    def match(self, array: np.ndarray) -> RowMatch:
        """Classify every row of ``array``; odd shapes or dtypes give all-other, never an error."""
        try:
            arr = np.asarray(array)
        except Exception:  # e.g. a ragged list; nothing in it can be a Fashion-MNIST row
            return _no_match(len(array) if hasattr(array, "__len__") else 0)
        n = arr.shape[0] if arr.ndim >= 1 else 0
        if arr.ndim < 2 or math.prod(arr.shape[1:]) != _PIXELS or n == 0:
            return _no_match(n)
        flat = arr.reshape(n, _PIXELS)
        if flat.dtype == np.uint8:
            levels, ok, affine = np.ascontiguousarray(flat), np.ones(n, bool), _IDENTITY
        elif flat.dtype.kind in "iuf":
            precision = flat.dtype
            if precision == np.float16:  # widened once: numpy has no fast float16 loops
                flat = flat.astype(np.float32)
            affine = _recover_affine(flat, precision)
            if affine is None:
                return _no_match(n)
            levels, ok = _levels(flat, affine)
        else:  # bool, complex, strings, objects
            return _no_match(n)
        kind, index = self._lookup(levels, ok)
        return RowMatch(kind, index, affine.scale, affine.offset)

    def _lookup(self, levels: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = _row_hashes(levels, self._seed)
        pos = np.minimum(np.searchsorted(self._hashes, h), len(self._hashes) - 1)
        hit = ok & (self._hashes[pos] == h)
        tr, te = self._train_of[pos], self._test_of[pos]
        # Confirm hits word for word, so a hash collision can never make a false match.
        rows = np.flatnonzero(hit)
        ref = np.where(tr[rows] >= 0, tr[rows], len(self._train) + te[rows])
        same = np.all(levels.view(np.uint64)[rows] == self._words[ref], axis=1)
        hit[rows[~same]] = False
        kind = np.zeros(len(levels), np.int8)
        kind[hit & (tr >= 0)] = ROW_TRAIN
        kind[hit & (te >= 0)] += ROW_TEST  # TRAIN + TEST == BOTH
        index = np.where(hit, np.where(tr >= 0, tr, te), -1).astype(np.int32)
        return kind, index


def _no_match(n: int) -> RowMatch:
    return RowMatch(np.zeros(n, np.int8), np.full(n, -1, np.int32), None, None)


@dataclass(frozen=True)
class _Affine:
    """array ~= scale * level + offset, with what it takes to recover the levels fast and safely."""

    scale: float
    offset: float
    tol: float  # in levels
    float32_ok: bool = True  # float32 arithmetic is precise enough (offset not huge against scale)
    in_range: bool = True  # the array's min and max map to levels within 0..255


_IDENTITY = _Affine(1.0, 0.0, 0.0)


def _tolerance(dtype: np.dtype, magnitude: float, scale: float) -> float:
    """How far from an integer level a value may be, in levels, given the dtype's rounding."""
    eps = float(np.finfo(dtype).eps) if dtype.kind == "f" else 0.0
    return float(np.clip(1.5 * eps * magnitude / scale, 0.01, 0.3))


def _recover_affine(flat: np.ndarray, precision: np.dtype) -> _Affine | None:
    """The map flat ~= scale * k + offset, k integer in 0..255, or None.

    The minimum is level 0 (every Fashion-MNIST image has black pixels). The scale is the largest
    (max - min) / kmax under which (nearly) all sampled values sit on integer levels, refined by a
    least-squares fit. Weighting by counts lets a few odd rows (noise, NaN) not spoil the rest.
    """
    with np.errstate(all="ignore"):
        lo, hi = float(flat.min()), float(flat.max())
    values = flat.reshape(-1)
    if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN/inf rows: other; the rest may match
        values = values[np.isfinite(values)]
        if values.size == 0:
            return None
        lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return None
    if values.size > _SAMPLE:
        values = values[np.random.default_rng(0).integers(0, values.size, _SAMPLE)]
    distinct, counts = np.unique(values.astype(np.float64), return_counts=True)
    top = np.argsort(counts)[-_MAX_DISTINCT:]  # affine uint8 data has at most 256 distinct values
    distinct, weight = distinct[top], counts[top] / values.size
    magnitude = max(abs(lo), abs(hi))
    kmax = np.arange(1, 256, dtype=np.float64)
    rel = (distinct - lo)[None, :] * kmax[:, None] / (hi - lo)  # levels under each candidate kmax
    tol = np.array([_tolerance(precision, magnitude, (hi - lo) / k) for k in kmax])
    on_level = np.abs(rel - np.rint(rel)) <= tol[:, None]
    fit = on_level.astype(np.float64) @ weight  # share of sampled values on a level, per kmax
    if fit.max() < _MIN_FIT:
        return None
    best = int(np.flatnonzero(fit >= fit.max() - 1e-3)[0])  # larger kmax only split levels further
    keep = on_level[best]
    scale, offset = np.polyfit(np.rint(rel[best, keep]), distinct[keep], 1)
    low, high = (lo - offset) / scale, (hi - offset) / scale
    return _Affine(float(scale), float(offset), _tolerance(precision, magnitude, scale),
                   float32_ok=magnitude / scale < 1e4, in_range=low > -0.5 and high < 255.5)


def _levels(flat: np.ndarray, affine: _Affine) -> tuple[np.ndarray, np.ndarray]:
    """Recovered uint8 rows, and for each row whether all its values are near levels 0..255."""
    n = len(flat)
    work = np.float32 if affine.float32_ok else np.float64
    levels = np.empty((n, _PIXELS), np.uint8)
    ok = np.empty(n, bool)
    inv = 1.0 / affine.scale
    shift = work(-affine.offset * inv)
    r = np.empty((min(n, _CHUNK), _PIXELS), work)
    k = np.empty_like(r)
    with np.errstate(all="ignore"):  # NaN and inf rows simply fail the checks
        for start in range(0, n, _CHUNK):
            rows = slice(start, start + _CHUNK)
            m = len(flat[rows])
            np.multiply(flat[rows], inv, out=r[:m], dtype=work, casting="unsafe")
            r[:m] += shift
            np.rint(r[:m], out=k[:m])
            np.subtract(r[:m], k[:m], out=r[:m])
            np.abs(r[:m], out=r[:m])
            row_ok = r[:m].max(axis=1) <= affine.tol
            if not affine.in_range:  # skipped when the array's own min and max are on 0..255
                row_ok &= (k[:m].min(axis=1) >= 0) & (k[:m].max(axis=1) <= 255)
                np.clip(k[:m], 0, 255, out=k[:m])
            ok[rows] = row_ok
            np.copyto(levels[rows], k[:m], casting="unsafe")
    return levels, ok


@functools.lru_cache(maxsize=2)
def _row_index_for(source: str) -> RowIndex:
    return RowIndex.from_dataset(load_fashion_mnist(None if source == KERAS_DOWNLOAD else source))


def row_index(data_dir: str | Path | None = None) -> RowIndex:
    """The RowIndex of the Fashion-MNIST copy ``load_fashion_mnist(data_dir)`` finds; cached."""
    return _row_index_for(load_fashion_mnist(data_dir).source)
