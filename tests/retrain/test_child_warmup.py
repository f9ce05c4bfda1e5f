"""The retrain child started before the student's kernel: it gets ready (TensorFlow imported, data set
loaded) without a job, then trains the job it is handed; with no job it goes away. Real processes,
real training on real Fashion-MNIST rows."""

from __future__ import annotations

import json
import time
from pathlib import Path

from grader.options import Budget
from grader.retrain.child import RetrainChild, retrain_in_child
from tests.builders import recorded_fit, trace_of, train_rows


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.is_file() else []


def _wait_ready(child: RetrainChild, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while {"ready": True} not in _lines(child.runs_file):
        assert child.proc.poll() is None, (child.proc.returncode, (child.runs_file.parent / "retrain.log").read_text())
        assert time.monotonic() < deadline, "the retrain child never got ready"
        time.sleep(0.1)


def test_warm_child_waits_for_its_job_then_trains_it(tmp_path: Path, fmnist) -> None:
    arrays = tmp_path / "arrays"
    arrays.mkdir()
    with RetrainChild(tmp_path, Budget().memory_mb) as child:
        _wait_ready(child)
        time.sleep(0.5)
        assert child.proc.poll() is None  # ready, and waiting: nothing to train yet
        x, y = train_rows(fmnist, 1500)
        trace_of(recorded_fit(arrays, x, y)).save(tmp_path / "trace.json")
        runs = retrain_in_child(tmp_path / "trace.json", arrays, tmp_path, final_model_id=1, budget=Budget(),
                                cache_dir=None, seed=1234, child=child)
        assert child.proc.returncode == 0
    assert [(r.run_id, r.status, r.epochs_run) for r in runs] == [("m1", "ok", 1)], [r.reason for r in runs]
    assert runs[0].test_accuracy is not None
    lines = _lines(tmp_path / "retrain-runs.jsonl")
    assert lines[0] == {"ready": True} and [m["run"]["run_id"] for m in lines[1:] if "run" in m] == ["m1"]


def test_child_without_a_job_goes_away(tmp_path: Path) -> None:
    child = RetrainChild(tmp_path, Budget().memory_mb)
    _wait_ready(child)
    child.proc.stdin.close()  # what a hand-in with nothing to retrain leaves it: no job
    assert child.proc.wait(timeout=30) == 0
    child.close()
    stopped = RetrainChild(tmp_path, Budget().memory_mb)
    stopped.close()  # the grader stops it at once (e.g. the capture failed): it is gone, not left running
    assert stopped.proc.returncode is not None


def test_nothing_planned_never_starts_a_child(tmp_path: Path) -> None:
    trace_of().save(tmp_path / "trace.json")
    runs = retrain_in_child(tmp_path / "trace.json", tmp_path, tmp_path, final_model_id=None, budget=Budget(),
                            cache_dir=None, seed=1234)
    assert runs == [] and not (tmp_path / "retrain.log").exists()
