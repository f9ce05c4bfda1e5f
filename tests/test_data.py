"""grader.data on the real Fashion-MNIST: loading, errors, the split, Keras' cache, fingerprints."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from grader import data
from grader.data import (
    FILES,
    ROW_BOTH,
    ROW_OTHER,
    ROW_TEST,
    ROW_TRAIN,
    FashionMNIST,
    RowIndex,
    canonical_split,
    load_fashion_mnist,
    row_index,
    seed_keras_cache,
    validation_split_index,
)
from grader.errors import DataError


def _linked_copy(source: Path, folder: Path) -> Path:
    """A folder holding the four real files as symlinks (no 30 MB copy)."""
    folder.mkdir(parents=True, exist_ok=True)
    for fname in FILES.values():
        (folder / fname).symlink_to(source / fname)
    return folder


@pytest.fixture(scope="module")
def source_dir(fmnist: FashionMNIST) -> Path:
    return Path(fmnist.source)


@pytest.fixture(scope="module")
def index(fmnist: FashionMNIST) -> RowIndex:
    return RowIndex.from_dataset(fmnist)


# ---------------------------------------------------------------------------------------- loading


def test_loads_the_real_dataset(fmnist: FashionMNIST) -> None:
    assert fmnist.x_train.shape == (60000, 28, 28) and fmnist.x_test.shape == (10000, 28, 28)
    assert fmnist.y_train.shape == (60000,) and fmnist.y_test.shape == (10000,)
    for arr in (fmnist.x_train, fmnist.y_train, fmnist.x_test, fmnist.y_test):
        assert arr.dtype == np.uint8 and not arr.flags.writeable
    # Fashion-MNIST is balanced: 6000 train and 1000 test images per class.
    assert np.bincount(fmnist.y_train).tolist() == [6000] * 10
    assert np.bincount(fmnist.y_test).tolist() == [1000] * 10
    assert load_fashion_mnist() is fmnist  # cached per process


def test_data_dir_argument_and_env_var(source_dir: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_fashion_mnist(data.DEBIAN_DIR).source == str(data.DEBIAN_DIR.resolve())
    linked = _linked_copy(source_dir, tmp_path / "env")
    monkeypatch.setenv("GRADER_DATA_DIR", str(linked))
    loaded = load_fashion_mnist()
    assert loaded.source == str(linked.resolve())
    assert np.array_equal(loaded.x_test, load_fashion_mnist(data.DEBIAN_DIR).x_test)


def test_falls_through_to_the_next_valid_place(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_DATA_DIR", str(tmp_path / "nothing-here"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras-home"))
    assert load_fashion_mnist().source == str(data.DEBIAN_DIR.resolve())


def test_empty_folder_raises_naming_the_folder_and_files(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_fashion_mnist(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message
    assert all(fname in message for fname in FILES.values())


@pytest.mark.parametrize("content, complaint", [
    (b"\x00\x01 definitely not gzip" * 40, "not a readable gzip file"),
    (gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 20), "data bytes"),  # header, no pixels
    (gzip.compress(b"\x00\x00\x08\x01" + (10000).to_bytes(4, "big") + bytes(10000)),
     "IDX magic"),  # a labels file where the images should be
])
def test_corrupt_gz_raises(source_dir: Path, tmp_path: Path, content: bytes,
                           complaint: str) -> None:
    folder = tmp_path / "corrupt"
    folder.mkdir()
    for name, fname in FILES.items():
        if name == "x_test":
            (folder / fname).write_bytes(content)
        else:
            (folder / fname).symlink_to(source_dir / fname)
    with pytest.raises(DataError, match=complaint) as err:
        load_fashion_mnist(folder)
    assert FILES["x_test"] in str(err.value)


def test_truncated_gz_and_bad_labels_raise(source_dir: Path, tmp_path: Path) -> None:
    folder = _linked_copy(source_dir, tmp_path / "truncated")
    labels = folder / FILES["y_test"]
    raw = gzip.decompress(labels.read_bytes())
    labels.unlink()
    labels.write_bytes(gzip.compress(raw[:-1] + bytes([10])))  # last label 10: not a class
    with pytest.raises(DataError, match="label 10"):
        load_fashion_mnist(folder)
    images = folder / FILES["x_train"]
    full = images.read_bytes()
    images.unlink()
    images.write_bytes(full[: len(full) // 2])
    with pytest.raises(DataError, match="not a readable gzip"):
        load_fashion_mnist(folder)


# ------------------------------------------------------------------------------------ the split


def test_validation_split_index_matches_keras_helper() -> None:
    from keras.src.trainers.data_adapters.array_slicing import train_validation_split

    for n in [*range(1, 120), 999, 1000, 1001, 48000, 59999, 60000]:
        for split in (0.01, 0.1, 0.15, 0.2, 0.25, 0.3, 1 / 3, 0.5, 0.7, 0.9, 0.99):
            try:
                (train, _), (val, _) = train_validation_split(
                    (np.zeros(n), np.zeros(n)), validation_split=split)
            except ValueError:
                with pytest.raises(ValueError):
                    validation_split_index(n, split)
                continue
            i = validation_split_index(n, split)
            assert (i, n - i) == (len(train), len(val)), (n, split)
    assert validation_split_index(60000) == 48000


def test_validation_split_index_matches_a_real_fit() -> None:
    """After one epoch, Keras' val_loss is the loss on exactly rows [i:] of the fitted array."""
    import keras

    rng = np.random.default_rng(1)
    x = rng.normal(size=(37, 4)).astype("float32")
    y = rng.normal(size=(37, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, validation_split=0.2, epochs=1, batch_size=64, verbose=0)
    i = validation_split_index(37, 0.2)
    assert i == 29
    losses = {j: model.evaluate(x[j:], y[j:], batch_size=64, verbose=0) for j in (i - 1, i, i + 1)}
    assert losses[i] == pytest.approx(history.history["val_loss"][0], rel=1e-6)
    assert losses[i - 1] != pytest.approx(losses[i], rel=1e-4)
    assert losses[i + 1] != pytest.approx(losses[i], rel=1e-4)


def test_canonical_split_is_the_last_20_percent(fmnist: FashionMNIST) -> None:
    (x_tr, y_tr), (x_val, y_val) = canonical_split(fmnist)
    assert len(x_tr) == len(y_tr) == 48000 and len(x_val) == len(y_val) == 12000
    assert np.array_equal(x_val, fmnist.x_train[48000:])
    assert np.array_equal(y_tr, fmnist.y_train[:48000])


# ---------------------------------------------------------------------------------- Keras cache


def test_seed_keras_cache_copies_once_and_repairs(source_dir: Path, tmp_path: Path) -> None:
    target = seed_keras_cache(source_dir, keras_home=tmp_path / "kh")
    assert target == tmp_path / "kh" / "datasets" / "fashion-mnist"
    for fname in FILES.values():
        assert (target / fname).read_bytes() == (source_dir / fname).read_bytes()
    stamps = {f: (target / f).stat().st_mtime_ns for f in FILES.values()}
    (target / FILES["y_test"]).write_bytes(b"broken")
    seed_keras_cache(source_dir, keras_home=tmp_path / "kh")
    assert (target / FILES["y_test"]).read_bytes() == (source_dir / FILES["y_test"]).read_bytes()
    assert {f: (target / f).stat().st_mtime_ns for f in FILES.values() if f != FILES["y_test"]} \
        == {f: t for f, t in stamps.items() if f != FILES["y_test"]}


def test_keras_load_data_works_offline_from_a_seeded_cache(fmnist: FashionMNIST,
                                                           tmp_path: Path) -> None:
    home = tmp_path / "keras-home"
    seed_keras_cache(keras_home=home)
    script = textwrap.dedent("""
        import hashlib
        from keras.datasets import fashion_mnist
        from keras.src.backend.config import keras_home
        (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
        print("HOME", keras_home())
        for a in (x_train, y_train, x_test, y_test):
            print("SHA", hashlib.sha256(a.tobytes()).hexdigest(), a.shape)
    """)
    env = {**os.environ, "KERAS_HOME": str(home), "HOME": str(tmp_path / "user"),
           "TF_CPP_MIN_LOG_LEVEL": "3",
           # Any download attempt must fail at once instead of reaching a network.
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr
    assert "Downloading" not in out.stdout + out.stderr
    assert f"HOME {home}" in out.stdout
    expected = [f"SHA {hashlib.sha256(a.tobytes()).hexdigest()} {a.shape}"
                for a in (fmnist.x_train, fmnist.y_train, fmnist.x_test, fmnist.y_test)]
    assert [line for line in out.stdout.splitlines() if line.startswith("SHA")] == expected


# ------------------------------------------------------------------------------ row fingerprints

_MEAN, _STD = 0.2860405969887955, 0.35302424451492254  # of x_train / 255, checked below


@pytest.fixture(scope="module")
def mixed(fmnist: FashionMNIST) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """3000 train rows and 1000 test rows, shuffled together, with the expected kind and index."""
    rng = np.random.default_rng(7)
    train_rows = rng.choice(60000, 3000, replace=False)
    test_rows = rng.choice(10000, 1000, replace=False)
    images = np.concatenate([fmnist.x_train[train_rows], fmnist.x_test[test_rows]])
    kind = np.repeat(np.int8([ROW_TRAIN, ROW_TEST]), [3000, 1000])
    where = np.concatenate([train_rows, test_rows]).astype(np.int32)
    order = rng.permutation(4000)
    return images[order], kind[order], where[order]


def _standardise(x: np.ndarray, dtype: str) -> np.ndarray:
    x = x / 255.0
    return ((x - x.mean()) / x.std()).astype(dtype)


TRANSFORMS = {
    "uint8 (n,28,28)": lambda x: x,
    "uint8 (n,784)": lambda x: x.reshape(len(x), 784),
    "uint8 (n,28,28,1)": lambda x: x[..., None],
    "float16 raw": lambda x: x.astype("float16"),
    "float32 raw (n,784)": lambda x: x.astype("float32").reshape(len(x), -1),
    "int64 raw": lambda x: x.astype("int64"),
    "float16 /255": lambda x: (x / 255).astype("float16"),
    "float32 /255 (n,28,28,1)": lambda x: (x.astype("float32") / 255)[..., None],
    "float32 /255.0 (n,784)": lambda x: (x / 255.0).astype("float32").reshape(len(x), 784),
    "float64 /255": lambda x: x / 255.0,
    "float16 standardised": lambda x: _standardise(x, "float16"),
    "float32 standardised (n,784)": lambda x: _standardise(x, "float32").reshape(len(x), 784),
    "float64 standardised (n,28,28,1)": lambda x: _standardise(x, "float64")[..., None],
    "float32 train statistics": lambda x: ((x / 255.0 - _MEAN) / _STD).astype("float32"),
}


@pytest.mark.parametrize("name", TRANSFORMS)
def test_match_finds_every_train_and_test_row(index: RowIndex, mixed, name: str) -> None:
    images, kind, where = mixed
    result = index.match(TRANSFORMS[name](images))
    assert np.array_equal(result.kind, kind)
    assert np.array_equal(result.index, where)  # exact: Fashion-MNIST holds no duplicate images
    assert result.summary() == {"train": 3000, "test": 1000, "both": 0, "other": 0, "total": 4000}
    assert result.scale is not None and result.offset is not None


def test_match_recovers_the_affine_map(fmnist: FashionMNIST, index: RowIndex) -> None:
    scaled = fmnist.x_train / 255.0
    assert (scaled.mean(), scaled.std()) == pytest.approx((_MEAN, _STD), rel=1e-12)
    result = index.match(((fmnist.x_test / 255.0 - _MEAN) / _STD).astype("float32"))
    assert result.summary()["test"] == 10000
    assert np.array_equal(result.index, np.arange(10000))
    assert result.scale == pytest.approx(1 / (255 * _STD), rel=1e-5)
    assert result.offset == pytest.approx(-_MEAN / _STD, rel=1e-5)
    assert index.match(fmnist.x_train[:10]).scale == 1.0


def test_match_on_the_whole_dataset(fmnist: FashionMNIST, index: RowIndex) -> None:
    everything = np.concatenate([fmnist.x_train, fmnist.x_test])
    result = index.match((everything / 255).astype("float32").reshape(70000, 784))
    assert result.summary() == {"train": 60000, "test": 10000, "both": 0, "other": 0,
                                "total": 70000}
    assert np.array_equal(result.index, np.concatenate([np.arange(60000), np.arange(10000)]))


def test_subsets_and_shuffles_keep_their_indices(fmnist: FashionMNIST, index: RowIndex) -> None:
    rng = np.random.default_rng(3)
    pick = rng.choice(60000, 257, replace=False)
    assert np.array_equal(index.match(fmnist.x_train[pick] / 255.0).index, pick)
    shuffled = rng.permutation(10000)
    result = index.match(fmnist.x_test[shuffled].astype("float32"))
    assert np.array_equal(result.index, shuffled) and (result.kind == ROW_TEST).all()
    # Keras' own validation part, a slice, and a single image.
    (_, _), (x_val, _) = canonical_split(fmnist)
    assert np.array_equal(index.match(x_val / 255.0).index, np.arange(48000, 60000))
    one = index.match(fmnist.x_test[1234:1235] / 255.0)
    assert one.kind.tolist() == [ROW_TEST] and one.index.tolist() == [1234]


def test_rows_without_white_pixels_still_match(fmnist: FashionMNIST, index: RowIndex) -> None:
    """Without level 255 the max alone does not give the scale; the level spacing must."""
    dim = np.flatnonzero(fmnist.x_test.reshape(10000, -1).max(axis=1) < 255)[:40]  # all 254
    assert len(dim) == 40
    for array in (fmnist.x_test[dim] / 255.0, ((fmnist.x_test[dim] / 255.0 - _MEAN) / _STD)):
        result = index.match(array.astype("float32"))
        assert np.array_equal(result.index, dim) and (result.kind == ROW_TEST).all()
        assert result.scale == pytest.approx(1 / 255 if array.min() == 0 else 1 / (255 * _STD))
    single = index.match(fmnist.x_test[dim[:1]] / 255.0)
    assert single.index.tolist() == [dim[0]]


def test_rows_found_in_train_and_test_are_both(fmnist: FashionMNIST) -> None:
    # The real data set has no image in both splits; plant two to exercise that path.
    x_train, x_test = fmnist.x_train.copy(), fmnist.x_test.copy()
    x_test[5] = x_train[7]
    x_train[100] = x_train[7]  # a duplicate inside train too: its first index is reported
    planted = RowIndex.from_dataset(FashionMNIST(x_train, fmnist.y_train, x_test, fmnist.y_test,
                                                 source="planted"))
    result = planted.match(np.stack([x_train[7], x_test[5], x_train[100], x_train[8],
                                     x_test[6]]) / 255.0)
    assert result.kind.tolist() == [ROW_BOTH, ROW_BOTH, ROW_BOTH, ROW_TRAIN, ROW_TEST]
    assert result.index.tolist() == [7, 7, 7, 8, 6]
    assert result.summary() == {"train": 1, "test": 1, "both": 3, "other": 0, "total": 5}


def _synthetic_digits(n: int, rng: np.random.Generator) -> np.ndarray:
    """MNIST-like strokes: anti-aliased rings and bars with grey edges, uint8 like real digits."""
    yy, xx = np.mgrid[0:28, 0:28]
    out = np.zeros((n, 28, 28))
    for i in range(n):
        cy, cx, r = rng.uniform(10, 18), rng.uniform(10, 18), rng.uniform(4, 9)
        ring = np.clip(2.0 - np.abs(np.hypot(yy - cy, xx - cx) - r), 0, 1)
        bar = np.clip(2.0 - np.abs(xx - rng.uniform(8, 20)), 0, 1) * (np.abs(yy - 14) < 10)
        out[i] = np.maximum(ring, bar * rng.integers(0, 2))
    return np.rint(out * 255).astype(np.uint8)


def test_foreign_arrays_are_all_other(fmnist: FashionMNIST, index: RowIndex) -> None:
    rng = np.random.default_rng(11)
    digits = _synthetic_digits(300, rng)
    train = fmnist.x_train[:500]
    foreign = {
        "uniform noise uint8": rng.integers(0, 256, (500, 28, 28), dtype=np.uint8),
        "uniform noise float": rng.random((500, 784)),
        "synthetic digits uint8": digits,
        "synthetic digits /255": digits / 255.0,
        "noisy copy": train / 255.0 + rng.normal(0, 0.01, train.shape),
        "shifted copy": np.roll(train, 1, axis=2),
        "mirrored copy": train[:, :, ::-1],
        "darker copy": np.rint(train * 0.9).astype(np.uint8),
        "quantised noise": rng.integers(0, 256, (500, 784)) / 255.0,
    }
    for name, array in foreign.items():
        result = index.match(array)
        assert (result.kind == ROW_OTHER).all(), name
        assert (result.index == -1).all(), name
        assert result.summary()["other"] == len(array), name
    # The affine map was recovered for these, so "other" came from the lookup, not a bail-out.
    assert index.match(digits / 255.0).scale == pytest.approx(1 / 255)
    assert index.match(foreign["noisy copy"]).scale is None


@pytest.mark.parametrize("array", [
    np.zeros((60000,), np.uint8), np.zeros((100, 10)), np.eye(10)[:7], np.float32(3.0),
    np.zeros((0, 784), np.float32), np.zeros((5, 28, 27)), np.ones((4, 784), bool),
    np.array(["a", "b"]), np.full((3, 784), np.nan), np.zeros((3, 784)), [[1, 2], [3]],
], ids=["labels", "one-hot", "eye", "scalar", "empty", "27-wide", "bool", "str", "nan", "zeros",
        "ragged"])
def test_odd_arrays_are_all_other_never_an_error(index: RowIndex, array) -> None:
    result = index.match(array)
    assert (result.kind == ROW_OTHER).all() and (result.index == -1).all()
    assert result.kind.dtype == np.int8 and result.index.dtype == np.int32
    assert result.summary()["total"] == (len(array) if hasattr(array, "__len__") else 0)


def test_bad_rows_are_other_and_the_rest_still_match(fmnist: FashionMNIST,
                                                     index: RowIndex) -> None:
    x = (fmnist.x_test[:100] / 255).astype("float32")
    x[3, 5, 5] = np.nan
    x[7] = np.inf
    x[9, 0, 0] += 0.3 / 255  # off the 256 levels
    x[11] = np.random.default_rng(0).random((28, 28))
    result = index.match(x)
    assert np.flatnonzero(result.kind == ROW_OTHER).tolist() == [3, 7, 9, 11]
    expected = np.where(result.kind == ROW_TEST, np.arange(100), -1)
    assert np.array_equal(result.index, expected)


def test_row_index_is_cached(fmnist: FashionMNIST) -> None:
    assert row_index() is row_index()
    assert row_index().match(fmnist.x_train[:3]).index.tolist() == [0, 1, 2]
