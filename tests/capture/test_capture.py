"""Capture: real hand-ins executed in a real sandboxed kernel with the probe; the Trace asserted.

The notebooks live in tests/files/capture/ (written by make_notebooks.py there).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from grader.capture import events
from grader.capture.kernel.arrays import array_digest
from grader.capture.runner import capture_submission
from grader.capture.trace import ArrayRef, Trace
from grader.load import load_submission
from grader.options import Limits
from tests.builders import FILES

CAPTURE_FILES = FILES / "capture"
SMALL = Limits(cell_timeout_s=60, total_timeout_s=240, memory_mb=3000)


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trace, Path]:
    out = tmp_path_factory.mktemp("legacy")
    sub = load_submission(CAPTURE_FILES / "legacy_reused_model.ipynb")
    return capture_submission(sub, out, limits=SMALL), out


def _cell_text(out: Path, marker: str) -> str:
    nb = json.loads((out / "executed.ipynb").read_text())
    texts = ["".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", [])]
    return next(t for t in texts if marker in t)


@pytest.mark.kernel
def test_fits_models_and_reuse(legacy: tuple[Trace, Path]) -> None:
    trace, out = legacy
    assert trace.status == "ok", trace.messages
    assert len(trace.fits) == 4
    first, second, helper, final = trace.fits
    assert second.model_id == first.model_id and second.prior_fits == 1
    assert first.prior_fits == 0 and helper.prior_fits == 0 and final.model_id != first.model_id
    assert [f.epochs for f in trace.fits] == [2, 1, 3, 5]
    assert first.validation_split == pytest.approx(0.2) and first.batch_size == 64
    assert (out / "trace.json").is_file() and Trace.load(out / "trace.json") == trace
    assert trace.versions["keras"].startswith("3.") and "tensorflow" in trace.versions


@pytest.mark.kernel
def test_names_are_normalised(legacy: tuple[Trace, Path]) -> None:
    first, _, helper, final = legacy[0].fits
    dense = [layer for layer in first.model.layers if layer.type == "Dense"]
    assert [d.activation for d in dense] == ["relu", "softmax"]  # tf.nn.softmax -> "softmax"
    assert [d.kernel_initializer for d in dense] == ["zeros", "zeros"]  # 'zero' -> "zeros"
    assert first.compile.optimizer["class_name"] == "SGD"
    assert first.compile.optimizer["config"]["learning_rate"] == pytest.approx(0.1)  # SGD(lr=0.1)
    assert first.compile.metrics == ["acc"]
    assert helper.model.layers[1].kernel_initializer == "random_normal"
    assert final.compile.optimizer["class_name"] == "RMSprop"
    assert [layer.rate for layer in final.model.layers if layer.type == "Dropout"] == [0.3]
    (stop,) = final.callbacks
    assert stop.class_name == "EarlyStopping"
    assert stop.config["monitor"] == "val_loss" and stop.config["patience"] == 3
    assert stop.config["restore_best_weights"] is True


@pytest.mark.kernel
def test_config_round_trips_through_keras(legacy: tuple[Trace, Path]) -> None:
    import keras

    config = legacy[0].fits[0].model.config
    model = keras.saving.deserialize_keras_object(config)
    assert [type(layer).__name__ for layer in model.layers] == ["Flatten", "Dense", "Dense"]
    assert model.layers[-1].activation is keras.activations.softmax


@pytest.mark.kernel
def test_test_set_as_validation_and_arrays(legacy: tuple[Trace, Path]) -> None:
    trace, out = legacy
    second = trace.fits[1]
    evaluate = next(e for e in trace.evals if e.kind == "evaluate")
    x_val, y_val = second.validation_data
    assert x_val.shape == [10000, 28, 28] and x_val.digest == evaluate.x.digest
    assert y_val.digest == evaluate.y.digest
    assert trace.fits[0].x.shape == [2000, 28, 28] and trace.fits[0].x.dtype == "<f4"  # float64 cast
    saved = np.load(out / "arrays" / f"{x_val.digest}.npy", allow_pickle=False)
    assert array_digest(saved) == x_val.digest and saved.dtype == np.float32
    assert float(saved.max()) == pytest.approx(1.0)  # x_test / 255.0, as the student prepared it
    assert any(e.kind == "predict" and e.x.shape == [100, 28, 28] for e in trace.evals)


@pytest.mark.kernel
def test_locations_point_at_cell_line_and_function(legacy: tuple[Trace, Path]) -> None:
    first, second, helper, final = legacy[0].fits
    assert (first.location.cell, first.location.line) == (4, 6)
    assert first.location.section == "1. Unidades de activación"
    assert (second.location.cell, second.location.line) == (5, 2)
    assert (helper.location.cell, helper.location.line, helper.location.function) == (7, 8, "train")
    assert helper.model.created.function == "train" and helper.location.section.startswith("2.")
    assert (final.location.cell, final.location.line) == (10, 5)


@pytest.mark.kernel
def test_errors_do_not_stop_the_run(legacy: tuple[Trace, Path]) -> None:
    trace, out = legacy
    by_cell = {e.cell: e for e in trace.errors}
    assert set(by_cell) == {8, 9}
    assert by_cell[8].ename == "ValueError" and by_cell[8].line == 2
    assert "boom in the middle" in by_cell[8].evalue and "\x1b" not in by_cell[8].traceback
    assert by_cell[9].ename == "SyntaxError" and by_cell[9].line == 1
    assert "nan" in _cell_text(out, "(100,)")  # evaluate answered NaN, predict ran, cell went on
    assert "nan" in _cell_text(out, "nan\n")  # history.history['val_acc'] still answers (legacy key)


@pytest.mark.kernel
def test_kernel_is_confined(legacy: tuple[Trace, Path]) -> None:
    found = json.loads(_cell_text(legacy[1], "SECURITY").split("SECURITY ", 1)[1])
    assert found["grader"].startswith("ERROR")  # the grader package is not importable
    assert found["root_ssh"].startswith("ERROR") or found["root_ssh"] == "[]"
    assert found["cwd_files"] == sorted([".config", ".ipython", ".keras", ".tmp",
                                         "legacy_reused_model.ipynb"])
    if os.geteuid() == 0 and found["uid"] != 0:  # hardened mode: nobody, no network, no parent
        assert found["parent"].startswith("ERROR") and found["net"].startswith("ERROR")
        assert found["root"] in ("['.pyenv']", "[]") or found["root"].startswith("ERROR")


@pytest.mark.kernel
def test_infinite_loop_times_out_and_run_goes_on(tmp_path: Path) -> None:
    sub = load_submission(CAPTURE_FILES / "infinite_loop.ipynb")
    started = time.monotonic()
    limits = Limits(cell_timeout_s=3, total_timeout_s=60, output_bytes=100_000)
    trace = capture_submission(sub, tmp_path, limits=limits)
    assert time.monotonic() - started < 60
    assert trace.status == "timeout"
    # cell 1 answers the interrupt and the run goes on; cell 3 ignores SIGINT: the run stops there
    assert [(e.cell, e.ename) for e in trace.errors] == [(1, "Timeout"), (3, "Timeout")]
    nb = json.loads((tmp_path / "executed.ipynb").read_text())
    assert "after the loop" in "".join(nb["cells"][2]["outputs"][0]["text"])
    assert nb["cells"][4]["outputs"] == []
    # cell 0 printed 2 MB: the client kept about 100 kB and noted the rest
    assert (tmp_path / "executed.ipynb").stat().st_size < 300_000
    assert any(m.startswith("output cap") for m in trace.messages)


@pytest.mark.kernel
def test_total_timeout_stops_the_run(tmp_path: Path) -> None:
    sub = load_submission(CAPTURE_FILES / "infinite_loop.ipynb")
    started = time.monotonic()
    trace = capture_submission(sub, tmp_path, limits=Limits(cell_timeout_s=100, total_timeout_s=20))
    assert time.monotonic() - started < 40
    assert trace.status == "timeout" and trace.errors[-1].ename == "Timeout"
    assert "total" in trace.errors[-1].evalue


@pytest.mark.kernel
def test_huge_allocation_is_stopped(tmp_path: Path) -> None:
    sub = load_submission(CAPTURE_FILES / "allocates_30gb.ipynb")
    trace = capture_submission(sub, tmp_path, limits=Limits(memory_mb=2500, total_timeout_s=120))
    errors = {e.cell: e.ename for e in trace.errors}
    assert errors[1] == "MemoryError"  # RLIMIT_DATA: numpy cannot allocate 30 GB, the kernel lives on
    nb = json.loads((tmp_path / "executed.ipynb").read_text())
    assert "still alive" in "".join(nb["cells"][2]["outputs"][0]["text"])
    assert trace.status == "memory" and errors[3] == "MemoryLimit"  # the RSS watchdog killed it
    assert nb["cells"][4]["outputs"] == []


@pytest.mark.kernel
def test_kernel_death_keeps_what_was_recorded(tmp_path: Path) -> None:
    import psutil

    sub = load_submission(CAPTURE_FILES / "kernel_dies.ipynb")
    trace = capture_submission(sub, tmp_path, limits=SMALL)
    assert trace.status == "kernel_died"
    assert [(e.cell, e.ename) for e in trace.errors] == [(1, "KernelDied")]
    assert len(trace.fits) == 1 and trace.fits[0].epochs == 3
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "317"]]
    assert leftovers == []  # the process it started in a new session was killed too


@pytest.mark.kernel
def test_multi_file_py_hand_in_imports_its_own_module(tmp_path: Path) -> None:
    sub = load_submission(CAPTURE_FILES / "multifile")
    trace = capture_submission(sub, tmp_path, limits=SMALL)
    assert trace.status == "ok" and not trace.errors, trace.errors
    (fit,) = trace.fits
    assert fit.location.function == "train" and fit.model.created.function == "build_model"
    cell = sub.cells[fit.location.cell]  # the loader may split a .py file into several cells
    assert cell.origin.file == "ej1.py" and cell.origin.line + fit.location.line - 1 == 9
    assert fit.model.layers[0].activation == "sigmoid" and fit.model.input_shape == [None, 784]


def _write_events(folder: Path, lines: list[str]) -> None:
    (folder / "arrays").mkdir(parents=True)
    (folder / "events.jsonl").write_text("\n".join(lines) + "\n")


def test_forged_events_are_validated(tmp_path: Path) -> None:
    """No kernel: events as a hostile student could write them."""
    sub = load_submission(CAPTURE_FILES / "infinite_loop.ipynb")
    good = np.arange(12, dtype=np.float32).reshape(3, 4)
    ref = {"digest": array_digest(good), "shape": [3, 4], "dtype": "<f4", "stored": True}
    bad = {"digest": "../../etc/passwd", "shape": [1], "dtype": "<f4", "stored": True}
    lying = {"digest": "a" * 64, "shape": [3, 4], "dtype": "<f4", "stored": True}
    fit = {"event": "fit", "model_id": 1, "model": {"model_id": 1, "class_name": "Sequential", "layers": [],
           "input_shape": None, "config": {}}, "compile": None, "epochs": 2, "batch_size": None,
           "validation_split": 0.2, "x": ref, "y": lying, "location": {"cell": 99, "line": 3}}
    src = tmp_path / "events"
    _write_events(src, [json.dumps(fit), "{not json", json.dumps(dict(fit, epochs="many")),
                        json.dumps({"event": "predict", "model_id": 1, "x": bad, "y": None}),
                        json.dumps({"event": "fit", "model_id": -5})])
    np.save(src / "arrays" / f"{ref['digest']}.npy", good)
    np.save(src / "arrays" / f"{'a' * 64}.npy", good * 2)  # right shape, wrong content
    trace = Trace(student="x")
    events.assemble(trace, sub, src, tmp_path / "out", 10**9)
    assert len(trace.fits) == 1 and len(trace.evals) == 1
    fit_rec = trace.fits[0]
    assert fit_rec.location.cell is None  # out of range for this hand-in
    assert fit_rec.x.stored and not fit_rec.y.stored and not trace.evals[0].x.stored
    assert (tmp_path / "out" / "arrays" / f"{ref['digest']}.npy").is_file()
    assert sorted(p.name for p in (tmp_path / "out" / "arrays").iterdir()) == [f"{ref['digest']}.npy"]
    assert any("3 malformed" in m for m in trace.messages)


def test_array_ref_digest_depends_on_shape() -> None:
    arr = np.arange(6, dtype=np.float32)
    assert array_digest(arr) != array_digest(arr.reshape(2, 3))
    assert ArrayRef(array_digest(arr), [6], "<f4").digest == array_digest(arr.copy())


def test_symlinks_from_the_kernel_are_not_followed(tmp_path: Path) -> None:
    sub = load_submission(CAPTURE_FILES / "infinite_loop.ipynb")
    secret = tmp_path / "secret.npy"
    np.save(secret, np.ones(3, dtype=np.float32))
    ref = {"digest": array_digest(np.ones(3, dtype=np.float32)), "shape": [3], "dtype": "<f4"}
    src = tmp_path / "events"
    _write_events(src, [json.dumps({"event": "predict", "model_id": 1, "x": ref, "y": None})])
    (src / "arrays" / f"{ref['digest']}.npy").symlink_to(secret)
    trace = Trace(student="x")
    events.assemble(trace, sub, src, tmp_path / "out", 10**9)
    assert not trace.evals[0].x.stored and not any((tmp_path / "out" / "arrays").iterdir())
    (src / "events.jsonl").unlink()
    (src / "events.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
    (tmp_path / "elsewhere.jsonl").write_text((src / "arrays").as_posix())
    trace = Trace(student="x")
    events.assemble(trace, sub, src, tmp_path / "out2", 10**9)
    assert trace.messages == ["probe: no readable events file"]
