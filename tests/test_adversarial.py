"""Hostile hand-ins graded in one batch: the grader survives, says what happened, leaks nothing.

One module-scoped fixture grades tests/adversarial/ (see make_hostile.py: every attack next to an
honest notebook) with `grader grade --jobs 2` in a subprocess, after grading the honest notebook
alone for reference, and records what the attacks could have changed outside the grader: files
named PWNED*, a canary file readable only by root, a loopback listener, leftover processes,
the rubric and the retrain cache. The tests below only read that record.

Failures that the sandbox does not (yet) prevent are marked xfail(strict=True) with the reason, so
the day the sandbox closes the hole the xfail turns into a failure and the mark must go.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from grader.capture.trace import Trace
from grader.gradebook import Gradebook
from grader.resources import default_rubric
from grader.results import GradeResult, result_from_dict
from grader.retrain import Budget
from tests.adversarial import make_hostile as hostile

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "tests" / "adversarial"
DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
# Small limits so that the loop and the memory bomb cost seconds, not the production minutes.
LIMITS = {"cell_timeout_s": 30, "total_timeout_s": 150, "memory_mb": 3072}
BATCH_TIMEOUT_S = 1500
SAFETY_RSS = 8 * 2**30  # the test's own guard for the shared machine, far above LIMITS["memory_mb"]
HONEST = ("zz_honest", "00_victim_honest")
CROSS = "01_cross_neighbours"  # attacks the victim; what it reads is checked with the victim
ATTACK_CELL = 4  # PREFIX is cells 0-3: the first attack cell
IS_ROOT = os.geteuid() == 0


@dataclass
class Batch:
    out: Path
    seconds: float
    returncode: int
    stdout: str
    results: dict[str, GradeResult]
    status: dict[str, str]  # gradebook status: graded | error
    alone: GradeResult
    canary: str | None
    marker: str
    connections: list[str]
    pwned: list[str]  # PWNED* files found outside the hand-ins' sandboxes
    stamped: list[str]  # grader files carrying write_outside's signature mtime
    lingering: list[str]  # processes left behind by the hand-ins
    safety: list[str]  # what the test's own guard had to do
    rubric_before: str
    rubric_after: str
    cache_before: dict[str, str]
    cache_after: dict[str, str]
    texts: dict[str, str] = field(default_factory=dict)  # every output file under out, decoded

    def trace(self, student: str) -> Trace:
        return Trace.load(self.out / "work" / student / "trace.json")


# ------------------------------------------------------------------------------------------ fixture


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    tmp = tmp_path_factory.mktemp("adversarial")
    marker = f"HONEST-{secrets.token_hex(8)}"
    handins, alone_dir = tmp / "handins", tmp / "alone"
    _lay_out(handins, alone_dir, marker)
    rubric = tmp / "rubric.yaml"
    shutil.copyfile(default_rubric(), rubric)
    cache = tmp / "cache"
    canary, canary_path = _plant_canary()
    _remove_pwned()
    # Workspaces of this batch go to a private TMPDIR (0711 so that `nobody` can pass through):
    # the attacks that aim at sibling workspaces then only ever reach this batch's.
    private_tmp = Path(tempfile.mkdtemp(prefix="grader-adversarial-", dir="/tmp"))
    os.chmod(private_tmp, 0o711)
    listener = _Listener()
    guard = _SafetyNet()
    try:
        common = ["--no-pdf", "--quiet", "--rubric", str(rubric), "--cache-dir", str(cache),
                  "--data-dir", str(DATA_DIR)]
        env = dict(os.environ, TMPDIR=str(private_tmp), GRADER_TEST_CAPTURE_LIMITS=json.dumps(LIMITS),
                   PYTHONPATH=os.pathsep.join([str(HOSTILE / "limits_shim"), str(ROOT)]))
        rc, out_alone, _ = _grade(alone_dir, tmp / "out-alone", common, env, guard)
        assert rc == 0, out_alone
        alone = _results(tmp / "out-alone")[0]["zz_honest"]
        cache_before = _tree_digest(cache)
        rubric_before = _digest(rubric)
        rc, stdout, seconds = _grade(handins, tmp / "out", common, env, guard)
        results, status = _results(tmp / "out")
        pwned = _remove_pwned(extra_roots=[private_tmp, tmp])
        stamped = [str(p) for p in _grader_files() if int(p.stat().st_mtime) == hostile.SIGNATURE_MTIME]
        lingering = _reap_leftovers(private_tmp)
        return Batch(
            out=tmp / "out", seconds=seconds, returncode=rc, stdout=stdout, results=results, status=status,
            alone=alone, canary=canary, marker=marker, connections=listener.stop(), pwned=pwned,
            stamped=stamped, lingering=lingering, safety=guard.stop(), rubric_before=rubric_before,
            rubric_after=_digest(rubric), cache_before=cache_before, cache_after=_tree_digest(cache),
            texts=_texts(tmp / "out"))
    finally:
        listener.stop()
        guard.stop()
        _reap_leftovers(private_tmp)
        shutil.rmtree(private_tmp, ignore_errors=True)
        if canary_path is not None:
            canary_path.unlink(missing_ok=True)


def _lay_out(handins: Path, alone_dir: Path, marker: str) -> None:
    handins.mkdir()
    alone_dir.mkdir()
    for path in HOSTILE.iterdir():
        if path.is_file() and path.suffix in (".ipynb", ".zip"):
            shutil.copyfile(path, handins / path.name)
    hostile.huge_notebook(handins / "loader_huge.ipynb")
    for name in HONEST:  # a per-run secret that only the honest hand-ins contain
        nb = json.loads((handins / f"{name}.ipynb").read_text(encoding="utf-8"))
        nb["cells"].append({"cell_type": "markdown", "id": "marker", "metadata": {},
                            "source": f"Firmado: {marker}"})
        (handins / f"{name}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    shutil.copyfile(handins / "zz_honest.ipynb", alone_dir / "zz_honest.ipynb")


def _grade(path: Path, out: Path, common: list[str], env: dict, guard: "_SafetyNet") -> tuple[int, str, float]:
    """`grader grade` in its own process group, so that a hang can be stopped as a whole."""
    cmd = [sys.executable, "-m", "grader", "grade", str(path), "--out", str(out), "--jobs", "2", *common]
    t = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    guard.watch(proc.pid)
    try:
        stdout, _ = proc.communicate(timeout=BATCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, _ = proc.communicate()
        stdout += f"\n[test: batch killed after {BATCH_TIMEOUT_S} s]"
    return proc.returncode, stdout, time.monotonic() - t


def _results(out: Path) -> tuple[dict[str, GradeResult], dict[str, str]]:
    with Gradebook(out / "gradebook.sqlite") as book:
        rows = book.results()
    return ({r["student"]: result_from_dict(r["result"]) for r in rows},
            {r["student"]: r["status"] for r in rows})


def _plant_canary() -> tuple[str | None, Path | None]:
    """A secret only root can read; None when the tests do not run as root (no uid to drop to)."""
    if not IS_ROOT:
        return None, None
    secret = f"CANARY-{secrets.token_hex(12)}"
    path = Path("/root") / f".grader_canary_{secrets.token_hex(4)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, secret.encode())
    os.close(fd)
    return secret, path


def _pwned_roots() -> list[Path]:
    import site

    roots = [Path(p) for p in ("/tmp", "/var/tmp", "/dev/shm", "/root", "/work")]
    return roots + [Path(p) for p in site.getsitepackages()] + [ROOT]


def _remove_pwned(extra_roots: list[Path] = ()) -> list[str]:
    """Find (and delete: they are this test's debris) files named PWNED* in the usual places."""
    found = []
    for root in [*_pwned_roots(), *extra_roots]:
        depth0 = len(root.parts)
        for base, dirs, files in os.walk(root, onerror=lambda e: None):
            if len(Path(base).parts) - depth0 >= 4:
                dirs[:] = []
            dirs[:] = [d for d in dirs if d not in (".git", "node_modules", "proc")]
            for name in dirs + files:
                if name.startswith(hostile.PWNED):
                    path = Path(base) / name
                    found.append(str(path))
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
    return sorted(set(found))


def _grader_files() -> list[Path]:
    return [*(ROOT / "grader").rglob("*.py"), *(ROOT / "rubrics").glob("*.yaml")]


def _reap_leftovers(private_tmp: Path) -> list[str]:
    """Processes the hand-ins left behind (fork-bomb sleepers, kernels of this batch): kill them."""
    left = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if any(m in cmd for m in hostile.SLEEP_MARKERS) or (
                "ipykernel" in cmd and str(private_tmp) in cmd):
            left.append(f"{proc.info['pid']}: {cmd[:120]}")
            try:
                proc.kill()
            except psutil.Error:
                pass
    return left


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree_digest(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): _digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _texts(out: Path) -> dict[str, str]:
    texts = {}
    for path in out.rglob("*"):
        if path.is_file() and path.stat().st_size < 64 * 2**20:
            texts[str(path.relative_to(out))] = path.read_bytes().decode("utf-8", "replace")
    return texts


class _Listener:
    """Accepts TCP connections on one of make_hostile.PORTS (127.0.0.1 only) and records them."""

    def __init__(self) -> None:
        self.connections: list[str] = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for port in hostile.PORTS:
            try:
                self.sock.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
        else:
            pytest.skip("no free port in make_hostile.PORTS for the loopback listener")
        self.port = port
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(1)
            try:
                data = conn.recv(100)
            except OSError:
                data = b""
            conn.close()
            self.connections.append(f"{peer}: {data!r}")

    def stop(self) -> list[str]:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(timeout=5)
            self.sock.close()
        return self.connections


class _SafetyNet:
    """Protects the shared machine if the sandbox fails: kills any process of the batch over
    SAFETY_RSS. Whatever it does is recorded, and test_safety_net_stayed_idle fails on it."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.roots: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def watch(self, pid: int) -> None:
        self.roots.append(pid)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for pid in list(self.roots):
                try:
                    procs = psutil.Process(pid).children(recursive=True)
                except psutil.Error:
                    continue
                for proc in procs:
                    try:
                        rss = proc.memory_info().rss
                        if rss > SAFETY_RSS:
                            proc.kill()
                            self.events.append(f"killed {proc.pid} ({' '.join(proc.cmdline())[:80]}) at {rss >> 20} MB")
                    except psutil.Error:
                        pass

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.events


# ------------------------------------------------------------------------------------- helpers


def errors(result: GradeResult, stage: str | None = None) -> list[dict]:
    return [e for e in result.errors if stage is None or e.get("stage") == stage]


def cell_errors(result: GradeResult, cell: int) -> list[str]:
    return [e["code"] for e in errors(result, "cell") if e.get("cell") == cell]


def verdict(result: GradeResult, rule: str):
    return next((v for v in result.rules if v.id == rule), None)


def histories(result: GradeResult) -> list[tuple]:
    return [(r.run_id, r.status, r.epochs_run, r.history, r.test_accuracy) for r in result.runs]


def run(result: GradeResult, run_id: str):
    return next((r for r in result.runs if r.run_id == run_id), None)


def prefix_run_ok(result: GradeResult, batch: Batch) -> None:
    """The honest fit before the attack (model m1) was captured and retrained like the reference."""
    m1 = run(result, "m1")
    assert m1 is not None and m1.status == "ok", [(r.run_id, r.status, r.reason) for r in result.runs]
    assert m1.history == run(batch.alone, "m1").history


def student_files(batch: Batch, student: str) -> dict[str, str]:
    return {k: v for k, v in batch.texts.items() if student in k}


# -------------------------------------------------------------------------------- the batch itself


def test_batch_finished_with_a_result_for_every_handin(batch: Batch) -> None:
    assert batch.returncode == 0, batch.stdout[-3000:]
    expected = set(hostile.CASES)
    assert expected <= set(batch.results), f"missing: {sorted(expected - set(batch.results))}"
    print(f"batch of {len(batch.results)} hand-ins graded in {batch.seconds:.0f} s")


def test_the_grader_never_failed_on_a_hostile_handin(batch: Batch) -> None:
    """Every attack ends as data in a graded result, not as a crashed worker ('error' status)."""
    crashed = {s: errors(r, "grader") for s, r in batch.results.items() if batch.status[s] != "graded"}
    assert not crashed, crashed


def test_honest_handin_is_intact(batch: Batch) -> None:
    honest = batch.results["zz_honest"]
    assert honest.meta.get("trace_status") == "ok", honest.errors
    assert not errors(honest, "cell") and not errors(honest, "capture")
    assert histories(honest) == histories(batch.alone)
    assert honest.score == batch.alone.score


@pytest.mark.xfail(strict=True, reason=(
    "all kernels run as the same uid `nobody`: 01_cross_neighbours finds the victim's kernel in /proc "
    "(cwd, open events.jsonl), overwrites its arrays and kills it. Needs one uid per concurrent kernel "
    "or a PID namespace (unshare -p --fork --mount-proc) per kernel."))
def test_victim_running_beside_an_attacker_is_intact(batch: Batch) -> None:
    victim = batch.results["00_victim_honest"]
    assert victim.meta.get("trace_status") == "ok", victim.errors
    assert histories(victim) == histories(batch.alone)
    read = [k for k, text in student_files(batch, CROSS).items() if batch.marker in text]
    assert not read, f"the attacker printed the victim's notebook into {read}"


def test_safety_net_stayed_idle(batch: Batch) -> None:
    assert not batch.safety, batch.safety


def test_no_process_left_behind(batch: Batch) -> None:
    left = [p for p in batch.lingering if hostile.CHDIR_DAEMON not in p]
    assert not left, left


@pytest.mark.xfail(strict=True, reason=(
    "a double-forked daemon that also chdir('/') leaves both the kernel's process tree and the "
    "workspace, which is how the runner finds processes to kill. Needs a PID namespace per kernel "
    "(its processes die with it), a cgroup to kill, or a uid per kernel whose processes are all killed."))
def test_daemon_that_leaves_the_workspace_is_killed(batch: Batch) -> None:
    left = [p for p in batch.lingering if hostile.CHDIR_DAEMON in p]
    assert not left, left


@pytest.mark.xfail(strict=True, reason=(
    "no private /tmp: /tmp, /var/tmp and /dev/shm are world-writable, so the kernel (uid nobody) can "
    "create files there. Needs a mount namespace with private tmpfs mounts (unshare -m) or a container."))
def test_no_file_created_outside_the_sandbox(batch: Batch) -> None:
    assert not batch.pwned, batch.pwned


def test_grader_files_rubric_and_cache_unchanged(batch: Batch) -> None:
    assert not batch.stamped, batch.stamped
    assert batch.rubric_after == batch.rubric_before
    assert batch.cache_before, "the reference run left nothing in the retrain cache"
    changed = {k for k, v in batch.cache_before.items() if batch.cache_after.get(k) != v}
    assert not changed, changed


def test_no_network_connection_reached_the_listener(batch: Batch) -> None:
    assert not batch.connections, batch.connections
    assert cell_errors(batch.results["network_loopback"], ATTACK_CELL) == ["ConnectionError"]


@pytest.mark.skipif(not IS_ROOT, reason="a root-only canary needs the tests to run as root")
def test_canary_readable_only_by_root_never_leaks(batch: Batch) -> None:
    leaks = [name for name, text in batch.texts.items() if batch.canary in text]
    leaks += [s for s, r in batch.results.items() if batch.canary in json.dumps(r.to_dict())]
    assert not leaks, leaks


def test_honest_handins_text_never_reaches_a_hostile_result(batch: Batch) -> None:
    leaks = []
    for student, result in batch.results.items():
        if student in HONEST or student == CROSS:
            continue
        if batch.marker in json.dumps(result.to_dict(), ensure_ascii=False):
            leaks.append(f"{student}: result")
        leaks += [f"{student}: {name}" for name, text in student_files(batch, student).items()
                  if batch.marker in text]
    assert not leaks, leaks


def test_outputs_stay_small_after_the_output_flood(batch: Batch) -> None:
    files = {name: len(text) for name, text in student_files(batch, "output_flood_1gb").items()}
    assert files and max(files.values()) < 5 * 2**20, files
    trace = batch.trace("output_flood_1gb")
    # Either the cap drops the flood, or the kernel's own send buffers grow past the memory limit
    # first (seen with a 3 GB limit): both stop it, neither reaches the grader.
    stopped = trace.status == "memory" or any("output cap" in m for m in trace.messages)
    assert stopped, (trace.status, trace.messages)
    prefix_run_ok(batch.results["output_flood_1gb"], batch)


# ----------------------------------------------------------------------------- one test per attack


def test_infinite_loop_times_out_and_keeps_the_earlier_fit(batch: Batch) -> None:
    result = batch.results["timeout_infinite_loop"]
    assert result.meta["trace_status"] == "timeout"
    assert cell_errors(result, ATTACK_CELL) == ["Timeout"]
    assert verdict(result, "cells_run").status == "fail"
    assert "celda" in verdict(result, "cells_run").message
    prefix_run_ok(result, batch)


@pytest.mark.parametrize("student, cell, codes", [
    ("memory_bytearray_30g", ATTACK_CELL, {"MemoryError"}),  # RLIMIT_DATA
    ("memory_growing_list", ATTACK_CELL, {"MemoryError", "MemoryLimit"}),  # rlimit or watchdog
    ("fork_bomb", ATTACK_CELL + 1, {"BlockingIOError", "Timeout"}),  # RLIMIT_NPROC or cell limit
    ("subprocess_spawn", ATTACK_CELL, {"BlockingIOError", "Timeout"}),
    ("read_secrets", ATTACK_CELL, {"RuntimeError"}),  # its own raise, carrying what it could read
    ("network_loopback", ATTACK_CELL, {"ConnectionError"}),  # its own raise: nothing connected
])
def test_attack_ends_as_a_cell_error_and_keeps_the_earlier_fit(
        batch: Batch, student: str, cell: int, codes: set[str]) -> None:
    result = batch.results[student]
    got = cell_errors(result, cell)
    assert len(got) == 1 and got[0] in codes, result.errors
    assert verdict(result, "cells_run").status == "fail"
    prefix_run_ok(result, batch)


def test_writing_outside_does_not_touch_the_grader(batch: Batch) -> None:
    result = batch.results["write_outside"]
    assert not [p for p in batch.pwned if "site-packages" in p or str(ROOT) in p or "/root" in p]
    prefix_run_ok(result, batch)


@pytest.mark.xfail(strict=True, reason=(
    "putting back the real Model.fit (keras.Model.fit.__wrapped__) hides a fit from the probe, and "
    "split_20 judges the recorded fits only (static facts are a fallback), so the hidden "
    "validation_data=(x_test, y_test) passes. Needs: at_cell() checking that Model.fit is still the "
    "probe's and reporting tampering, and/or rules flagging static fit calls never recorded."))
def test_restored_fit_still_shows_the_test_set_as_validation(batch: Batch) -> None:
    result = batch.results["probe_restore_fit"]
    split = verdict(result, "split_20")
    assert split is not None and split.status == "fail", split
    assert any(ev.cell == ATTACK_CELL for ev in split.evidence), split.evidence
    prefix_run_ok(result, batch)


def test_forged_events_are_validated_and_bounded(batch: Batch) -> None:
    """Well-formed forged fits are indistinguishable from real ones (the kernel owns the events
    file), so they are retrained -- but capped; garbage lines and ../ digests are dropped."""
    result = batch.results["probe_fake_events"]
    trace = batch.trace("probe_fake_events")
    assert any("malformed event" in m for m in trace.messages), trace.messages
    assert any("missing or invalid" in m for m in trace.messages), trace.messages
    cap = Budget().max_epochs
    for r in result.runs:
        assert r.epochs_run <= cap * len(r.fit_indices), (r.run_id, r.epochs_run, r.reason)
        assert (r.best_val_accuracy or 0) < 0.95, r


def test_overwritten_arrays_are_rejected(batch: Batch) -> None:
    result = batch.results["probe_overwrite_npy"]
    trace = batch.trace("probe_overwrite_npy")
    assert any("missing or invalid" in m for m in trace.messages), trace.messages
    for r in result.runs:  # never trained on the zeros: refused, or identical to the reference
        assert r.status != "ok" or r.history == run(batch.alone, "m1").history, r


def test_lambda_payload_never_runs_in_the_grader(batch: Batch) -> None:
    assert not [p for p in batch.pwned if p.endswith("-lambda")]
    result = batch.results["probe_lambda_payload"]
    lambda_runs = [r for r in result.runs if r.run_id != "m1"]
    assert lambda_runs and all(r.status != "ok" for r in lambda_runs), histories(result)


def test_forged_history_does_not_raise_the_grade(batch: Batch) -> None:
    result = batch.results["forged_history"]
    assert len(result.runs) == 2 and all((r.best_val_accuracy or 0) < 0.95 for r in result.runs)
    prefix_run_ok(result, batch)
    assert result.final is not None and result.final["val_accuracy"] < 0.95, result.final
    claimed = verdict(result, "reported_vs_reproduced")
    assert claimed is not None and claimed.status in ("fail", "warn"), claimed


def test_deleting_files_only_hurts_the_attacker(batch: Batch) -> None:
    prefix_run_ok(batch.results["delete_files"], batch)


@pytest.mark.parametrize("student", ["kill_parent", "kernel_exit", "kernel_segfault"])
def test_dying_kernel_is_reported_and_keeps_the_earlier_fit(batch: Batch, student: str) -> None:
    result = batch.results[student]
    assert result.meta["trace_status"] == "kernel_died", result.errors
    assert cell_errors(result, ATTACK_CELL) == ["KernelDied"]
    assert verdict(result, "cells_run").status == "fail"
    prefix_run_ok(result, batch)


@pytest.mark.parametrize("student, code", [
    ("loader_malformed_json", "invalid_json"), ("loader_binary", "binary"), ("loader_empty", "empty"),
    ("loader_huge", "too_large"), ("loader_zip_slip", "zip_unsafe_path"), ("loader_zip_bomb", "zip_bomb"),
])
def test_bad_files_get_a_spanish_load_error(batch: Batch, student: str, code: str) -> None:
    load = errors(batch.results[student], "load")
    assert [e["code"] for e in load] == [code], batch.results[student].errors
    assert "«" in load[0]["message"]  # names the file, in the Spanish message style


def test_nbformat_v3_is_converted_and_run(batch: Batch) -> None:
    result = batch.results["loader_nbformat_v3"]
    assert not errors(result, "load")
    assert any("v3" in n for n in result.meta.get("notes", []))
    assert result.meta.get("trace_status") == "ok", result.errors
