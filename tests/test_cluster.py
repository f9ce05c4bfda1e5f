"""`grader grade --cluster`: SPEC parsing, the errors that stop at once, the hand-in's bytes, a retrain
cache shared by processes, and a real LocalCluster whose workers a hand-in kills twice.

The end-to-end runs against the serial path (real kernels, minutes) are in test_cluster_e2e.py (slow).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.batch import grade_batch
from grader.cluster import CRASH_MESSAGE, ClusterDispatch, ClusterSpec, parse_spec
from grader.load import load_submission
from grader.options import Budget, GradeOptions
from grader.remote import grade_handin, make_job, pack_handin, unpack_handin
from tests.builders import cli_env, fixed_notebook, free_port, gradebook_rows, make_handins, run_cli, tiny_notebook


@pytest.mark.parametrize(("text", "spec"), [
    ("local:2", ClusterSpec("local", workers=2)),
    ("slurm:40", ClusterSpec("slurm", workers=40)),
    ("tcp://10.0.0.5:8786", ClusterSpec("tcp", address="tcp://10.0.0.5:8786")),
    (" tcp://lab-pc-01:8786 ", ClusterSpec("tcp", address="tcp://lab-pc-01:8786")),
])
def test_spec_forms(text: str, spec: ClusterSpec):
    assert parse_spec(text) == spec


@pytest.mark.parametrize("text", ["local", "local:0", "local:-1", "slurm:x", "tcp://host", "10.0.0.5:8786",
                                  "http://h:8786", "ssh:3", ""])
def test_bad_spec_is_rejected(text: str):
    with pytest.raises(ValueError, match=r"local:N .*tcp://HOST:PORT .*slurm:N"):
        parse_spec(text)


def test_cli_bad_spec_is_a_usage_error_naming_the_forms(tmp_path: Path):
    proc = run_cli("grade", str(tmp_path), "--cluster", "lab:3", timeout=120)
    assert proc.returncode == 2
    assert "usage: grader grade" in proc.stderr
    assert "argument --cluster: cannot read cluster 'lab:3': expected local:N" in proc.stderr
    assert "tcp://HOST:PORT" in proc.stderr and "slurm:N" in proc.stderr


def test_cli_unreachable_scheduler_is_one_line_and_exit_2(tmp_path: Path):
    handins = tmp_path / "in"
    handins.mkdir()
    nbformat.write(tiny_notebook(16), handins / "ana.ipynb")
    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    proc = run_cli("grade", str(handins), "--out", str(tmp_path / "out"), "--quiet", "--cluster", address,
                   "--cluster-timeout", "2", timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"grader: error: no Dask scheduler answered at {address} within 2 s (OSError)"
    assert time.monotonic() - started < 60


def test_cli_slurm_without_dask_jobqueue_names_the_extra(tmp_path: Path):
    # A dask_jobqueue that cannot be imported, ahead of the installed one on the path.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "dask_jobqueue.py").write_text("raise ImportError('not installed')\n", encoding="utf-8")
    handins = tmp_path / "in"
    handins.mkdir()
    nbformat.write(tiny_notebook(16), handins / "ana.ipynb")
    env = cli_env()
    env["PYTHONPATH"] = os.pathsep.join([str(shadow), env["PYTHONPATH"]])
    proc = subprocess.run([sys.executable, "-m", "grader", "grade", str(handins), "--out", str(tmp_path / "out"),
                           "--quiet", "--cluster", "slurm:2"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("grader: error: slurm:N needs dask-jobqueue: install the extra with "
                                   "pip install 'grader[cluster]'")


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="this machine is a SLURM node")
def test_cli_slurm_without_sbatch_says_where_to_run(tmp_path: Path):
    handins = tmp_path / "in"
    handins.mkdir()
    nbformat.write(tiny_notebook(16), handins / "ana.ipynb")
    proc = run_cli("grade", str(handins), "--out", str(tmp_path / "out"), "--quiet", "--cluster", "slurm:2",
                   timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("grader: error: slurm:N: sbatch is not on this machine's PATH; run grader on "
                                   "a SLURM login node")


# ------------------------------------------------------------------ fast: the hand-in's bytes

def test_packed_handins_load_with_the_same_digest_and_cells(tmp_path: Path):
    handins = make_handins(tmp_path / "in")
    (handins / "bruno" / "notas").mkdir()
    (handins / "bruno" / "notas" / "ej1.py").write_text("print('ej1')\n", encoding="utf-8")
    (handins / "bruno" / ".ipynb_checkpoints").mkdir()
    (handins / "bruno" / ".ipynb_checkpoints" / "ej4-checkpoint.py").write_text("x = 1\n", encoding="utf-8")
    (handins / "bruno" / "enlace.py").symlink_to("/etc/hostname")  # the loader skips symlinks: so must we
    for name in ("ana.ipynb", "bruno", "carla.zip"):
        here = load_submission(handins / name)
        there = unpack_handin(pack_handin(handins / name), tmp_path / "worker" / name, name)
        assert not there.is_symlink()
        moved = load_submission(there)
        assert moved.digest == here.digest
        assert [c.source for c in moved.cells] == [c.source for c in here.cells]
        assert moved.files == here.files
    assert not (tmp_path / "worker" / "bruno" / "bruno" / "enlace.py").exists()


def test_unpack_refuses_paths_outside_the_handin(tmp_path: Path):
    blob = tmp_path / "evil.zip"
    with zipfile.ZipFile(blob, "w") as zf:
        zf.writestr("ana/../../fuera.py", "x = 1\n")
    with pytest.raises(ValueError, match="unexpected member"):
        unpack_handin(blob.read_bytes(), tmp_path / "w", "ana")
    assert not (tmp_path / "fuera.py").exists()


def test_worker_without_fashion_mnist_answers_unfit_naming_itself(tmp_path: Path):
    handins = make_handins(tmp_path / "in")
    empty = tmp_path / "no-data"
    empty.mkdir()
    opts = GradeOptions(out_dir=tmp_path / "out", data_dir=empty)
    job = make_job(load_submission(handins / "ana.ipynb"), opts, "rules: {}\n")
    json.dumps({k: v for k, v in job.items() if k != "handin"})  # plain data, nothing pickled
    answer = grade_handin(job)
    assert answer["status"] == "unfit"
    assert answer["message"].startswith(f"worker pid {os.getpid()} cannot grade: Fashion-MNIST is not available")
    assert str(empty) in answer["message"] and "grader data" in answer["message"]
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ a real LocalCluster, a worker killer

def kill_worker_on_killer(job: dict) -> dict:
    """The Dask task, except that the hand-in named `killer` kills the worker process grading it."""
    if job["student"] == "killer":
        os._exit(1)
    return grade_handin(job)


def test_handin_that_kills_two_workers_becomes_an_error_result(tmp_path: Path, capsys):
    """A worker's death is retried once on another worker; a second one ends that hand-in with an
    error result, stored once, while the rest of the batch (a broken notebook, really graded) goes on."""
    handins = tmp_path / "in"
    handins.mkdir()
    nbformat.write(fixed_notebook(16), handins / "killer.ipynb")
    (handins / "roto.ipynb").write_text("{ not json", encoding="utf-8")
    opts = GradeOptions(out_dir=tmp_path / "out", budget=Budget(name="quick"), pdf=False,
                        cache_dir=tmp_path / "cache")
    dispatch = ClusterDispatch(parse_spec("local:2"), opts, progress=False, task=kill_worker_on_killer)
    summary = grade_batch(handins, opts, progress=False, dispatch=dispatch)
    assert (summary.graded, summary.failed) == (["roto"], ["killer"])
    book = gradebook_rows(opts.out_dir)
    assert {s: (row["status"], row["attempts"]) for s, row in book.items()} == \
        {"killer": ("error", 1), "roto": ("graded", 1)}
    killer = book["killer"]["result"]
    assert killer["errors"][0]["message"] == CRASH_MESSAGE == "El corrector falló con esta entrega; el profesor la revisará a mano."
    assert "2 workers died while grading this hand-in" in killer["errors"][0]["detail"]
    assert killer["meta"]["cluster"] == {"attempts": 2}
    assert book["roto"]["result"]["errors"][0]["stage"] == "load"
    assert (opts.out_dir / "roto.html").is_file() and (opts.out_dir / "logs" / "roto.log").is_file()
    err = capsys.readouterr().err
    assert err.count("cluster: a worker died while grading killer; sending it again") == 1


# ------------------------------------------------------------------ fast: a retrain cache shared by workers

def _hammer_cache(cache_dir: str, writer: int, rounds: int) -> None:
    from grader.results import RunResult
    from grader.retrain import cache

    for i in range(rounds):
        # Big enough that a write is many blocks: a reader could only see it whole or not at all.
        cache.store(Path(cache_dir), RunResult(run_id=f"w{writer}-{i}", model_id=writer, fit_indices=[i],
                                               cache_key="ab" * 32, notes=["x" * 200_000]))


def test_retrain_cache_shared_by_processes_never_shows_half_a_file(tmp_path: Path):
    """--cache-dir on a shared folder: two writer processes replace the same entry over and over while
    this process reads it. Once the entry exists, every read returns it whole: a half-written file
    would read as a miss (and cost a retrain)."""
    import multiprocessing

    from grader.retrain import cache

    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_hammer_cache, args=(str(tmp_path), n, 100)) for n in (1, 2)]
    for w in writers:
        w.start()
    reads = []
    while any(w.is_alive() for w in writers):
        run = cache.load(tmp_path, "ab" * 32)
        if run is not None or reads:
            reads.append(None if run is None else (run.model_id, run.run_id, len(run.notes[0])))
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert len(reads) > 10, "the readers never overlapped the writers"
    assert None not in reads, f"{reads.count(None)} of {len(reads)} reads saw a half-written entry"
    assert {model for model, _, _ in reads} <= {1, 2}
    assert all(run_id.startswith(f"w{model}-") and size == 200_000 for model, run_id, size in reads)
    assert not [p for p in tmp_path.rglob(".tmp-*")], "a temporary file was left behind"
