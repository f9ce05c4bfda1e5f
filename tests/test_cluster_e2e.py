"""`grader grade --cluster` end to end on real Dask clusters: real kernels, real retraining on tiny
data, real worker kills and Ctrl-C, workers in other folders started with Dask's own commands.

Three tiny hand-ins (a notebook, a folder of scripts importing each other, a ZIP) are graded with the
quick budget, and every result is compared with the serial path's result. Minutes on a 2-core machine,
so `slow`: `pytest -m slow tests/test_cluster_e2e.py`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from grader.data import KERAS_DOWNLOAD, load_fashion_mnist
from tests.builders import STUDENTS, cli_env, free_port, gradebook_rows, make_handins, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.kernel]


def comparable(result: dict, *, cached: bool = True) -> dict:
    """The result without what may differ between runs and engines: timings and the worker's name
    (and, with cached=False, whether a run's numbers came from the retrain cache)."""
    result = json.loads(json.dumps(result))
    result["meta"].pop("timings", None)
    result["meta"].pop("cluster", None)
    for run in result["runs"]:
        run.pop("wall_s", None)
        if not cached:
            run.pop("cached", None)
    return result


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> dict[str, dict]:
    """The three hand-ins graded by today's local batch: what every cluster run must reproduce."""
    root = tmp_path_factory.mktemp("serial")
    handins = make_handins(root / "in")
    out = root / "out"
    proc = run_cli("grade", str(handins), "--out", str(out), "--quiet", "--no-pdf", "--budget", "quick",
                   "--cache-dir", str(root / "cache"))
    assert proc.returncode == 0, proc.stderr
    book = gradebook_rows(out)
    assert set(book) == STUDENTS and all(row["status"] == "graded" for row in book.values())
    assert all(row["result"]["runs"][0]["status"] == "ok" for row in book.values())
    return {s: {"row": row, "html": (out / f"{s}.html").read_text(encoding="utf-8")} for s, row in book.items()}


def assert_same_as_serial(out: Path, serial: dict[str, dict], *, cached: bool = True) -> dict[str, dict]:
    book = gradebook_rows(out)
    assert set(book) == STUDENTS
    for student, row in book.items():
        assert row["status"] == "graded" and row["attempts"] == 1, (student, row["status"], row["attempts"])
        expected = serial[student]["row"]["result"]
        assert comparable(row["result"], cached=cached) == comparable(expected, cached=cached), student
        assert (out / "results" / f"{student}.json").is_file()
        assert (out / "logs" / f"{student}.log").is_file()
        assert row["result"]["meta"]["cluster"]["worker"].startswith("tcp://")
    exported = json.loads((out / "results.json").read_text(encoding="utf-8"))["results"]
    assert sorted(r["student"] for r in exported) == sorted(STUDENTS)
    return book


def test_local_cluster_results_equal_the_serial_path(serial, tmp_path: Path):
    handins = make_handins(tmp_path / "in")
    out = tmp_path / "out"
    proc = run_cli("grade", str(handins), "--out", str(out), "--quiet", "--no-pdf", "--budget", "quick",
                   "--cluster", "local:2", "--cache-dir", str(tmp_path / "cache"))
    assert proc.returncode == 0, proc.stderr
    assert "graded 3, unchanged 0, grader errors 0" in proc.stdout
    book = assert_same_as_serial(out, serial)
    assert {row["result"]["meta"]["cluster"]["attempts"] for row in book.values()} == {1}
    # The reports written from the workers' bytes are the serial ones (the timing line aside).
    for student in STUDENTS:
        assert _no_timings((out / f"{student}.html").read_text(encoding="utf-8")) == \
            _no_timings(serial[student]["html"])

    # A re-run resumes from the gradebook: nothing is sent to the cluster again.
    again = run_cli("grade", str(handins), "--out", str(out), "--quiet", "--no-pdf", "--budget", "quick",
                    "--cluster", "local:2", "--cache-dir", str(tmp_path / "cache"))
    assert again.returncode == 0, again.stderr
    assert "graded 0, unchanged 3" in again.stdout


def _no_timings(html: str) -> str:
    return re.sub(r"<dt>Tiempos \(s\)</dt><dd>[^<]*</dd>", "", html)


def test_worker_killed_mid_grading_hand_in_is_retried_and_stored_once(serial, tmp_path: Path):
    handins = make_handins(tmp_path / "in")
    out = tmp_path / "out"
    with running_grader("grade", str(handins), "--out", str(out), "--no-pdf", "--budget", "quick",
                        "--cluster", "local:2", "--cache-dir", str(tmp_path / "cache")) as proc:
        _wait_for_grading_worker(proc).send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr
    assert "a worker died while grading" in stderr
    assert "cluster: worker lost tcp://" in stderr
    book = assert_same_as_serial(out, serial)
    attempts = sorted(row["result"]["meta"]["cluster"]["attempts"] for row in book.values())
    assert attempts == [1, 1, 2]  # the killed one was sent twice and stored once


@contextmanager
def running_grader(*args: str) -> Iterator[subprocess.Popen]:
    """`python -m grader ARGS` in the background, in its own session; killed with its children at exit."""
    proc = subprocess.Popen([sys.executable, "-m", "grader", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env(), start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_until(check, proc: subprocess.Popen, what: str, timeout: float = 600):
    """Poll `check()` until it returns something true, while `proc` (the grader) keeps running."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.communicate()
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen in time")
        time.sleep(0.2)


def _wait_for_grading_worker(proc: subprocess.Popen) -> psutil.Process:
    """The Dask worker process (not its nanny) that runs a `grader.worker` subprocess right now."""

    def grading_worker() -> psutil.Process | None:
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                if "grader.worker" in " ".join(child.cmdline()):
                    return child.parent()
            except psutil.NoSuchProcess:
                continue
        return None

    worker = wait_until(grading_worker, proc, "a hand-in starting to grade on the cluster")
    time.sleep(3)  # well inside the grading, not at its first instruction
    return worker


def test_handin_bytes_travel_to_workers_elsewhere_and_a_worker_without_data_is_skipped(serial, tmp_path: Path):
    """An instructor's scheduler and two `dask worker`s in their own folders. --data-dir is relative:
    the first worker's folder has Fashion-MNIST there, the second's does not (it must answer so and
    be skipped). The hand-ins are deleted from the client's folder once they were sent."""
    data = load_fashion_mnist()
    if data.source == KERAS_DOWNLOAD:
        pytest.skip("Fashion-MNIST is only in Keras' download cache here")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    fit, unfit = tmp_path / "pc1", tmp_path / "pc2"
    for folder in (fit, unfit):
        folder.mkdir()
    shutil.copytree(data.source, fit / "fmnist")
    procs = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for folder in (fit, unfit):
            procs.append(subprocess.Popen(
                [*dask, "worker", address, "--nthreads", "1", "--nworkers", "1", "--memory-limit", "0",
                 "--no-dashboard", "--local-directory", str(folder / "scratch")],
                cwd=folder, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_for_workers(address, 2)
        handins = make_handins(tmp_path / "client" / "in")
        out = tmp_path / "client" / "out"
        client = subprocess.Popen(
            [sys.executable, "-m", "grader", "grade", str(handins), "--out", str(out), "--no-pdf", "--budget",
             "quick", "--cluster", address, "--data-dir", "fmnist", "--cache-dir", str(tmp_path / "cache")],
            cwd=tmp_path / "client", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
        _wait_for_tasks(address, client)
        shutil.rmtree(handins)
        _, stderr = client.communicate(timeout=900)
        assert client.returncode == 0, stderr
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)
    assert not handins.exists()
    book = assert_same_as_serial(out, serial)
    pc1 = {row["result"]["meta"]["cluster"]["worker"] for row in book.values()}
    assert len(pc1) == 1  # all graded by the worker that has the data
    assert "cannot grade: Fashion-MNIST is not available offline there (looked in fmnist)" in stderr
    assert pc1.pop() not in stderr  # the worker named in that line is the other one


def _wait_for_workers(address: str, n: int) -> None:
    from distributed import Client

    with Client(address, timeout=60) as c:
        c.wait_for_workers(n, timeout=120)


def _wait_for_tasks(address: str, client: subprocess.Popen) -> None:
    """Until the scheduler holds a grading task: the client packs every hand-in before it sends the first."""
    from distributed import Client

    def grading_task() -> bool:
        keys = c.run_on_scheduler(lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks])
        return any(k.startswith("grade-") for k in keys)

    with Client(address, timeout=60) as c:
        wait_until(grading_task, client, "the client sending a task")


def test_ctrl_c_cancels_the_cluster_and_a_rerun_resumes(serial, tmp_path: Path):
    handins = make_handins(tmp_path / "in")
    out = tmp_path / "out"
    args = ["grade", str(handins), "--out", str(out), "--quiet", "--no-pdf", "--budget", "quick",
            "--cluster", "local:2", "--cache-dir", str(tmp_path / "cache")]
    with running_grader(*args) as proc:
        wait_until(lambda: (out / "gradebook.sqlite").is_file() and gradebook_rows(out), proc, "a hand-in being stored")
        family = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted; re-run the same command to resume" in stderr
    first = gradebook_rows(out)
    assert 1 <= len(first) < len(STUDENTS), "the interrupt came too late to test anything"
    _, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, f"left running after Ctrl-C: {[p.cmdline() for p in alive]}"

    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert f"graded {len(STUDENTS) - len(first)}, unchanged {len(first)}" in again.stdout
    # A hand-in interrupted after its retrain finished finds it in the cache on the re-run: same numbers.
    book = assert_same_as_serial(out, serial, cached=False)
    for student, row in first.items():
        assert book[student] == row, f"{student} was graded again after being stored"
