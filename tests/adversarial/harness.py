"""Machinery of tests/test_adversarial.py: lay out the batch, run `grader grade`, and watch what
the hand-ins do outside the grader (PWNED* files, a root-only canary, a loopback listener, leftover
processes, a memory guard for the shared machine)."""

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
import threading
import time
from pathlib import Path

import psutil
import pytest

from grader.codec import from_data
from grader.gradebook import Gradebook
from grader.results import GradeResult
from tests.adversarial import hostile_names
from tests.adversarial import make_hostile as hostile
from tests.adversarial.isolation_attacks import huge_code_cell

ROOT = Path(__file__).resolve().parent.parent.parent
HOSTILE = ROOT / "tests" / "adversarial"
BATCH_TIMEOUT_S = 2400  # 35 hand-ins at ~100 s each (2 jobs) on the shared 2-core machine
SAFETY_RSS = 8 * 2**30  # the test's own guard for the shared machine, far above the test's limits
HONEST = ("zz_honest", "00_victim_honest")
IS_ROOT = os.geteuid() == 0


def lay_out(handins: Path, alone_dir: Path, marker: str) -> None:
    handins.mkdir()
    alone_dir.mkdir()
    for path in HOSTILE.iterdir():
        if path.is_file() and path.suffix in (".ipynb", ".zip"):
            shutil.copyfile(path, handins / path.name)
    hostile.huge_notebook(handins / "loader_huge.ipynb")
    hostile_names.lay_out(handins)  # names git cannot hold, and ZIPs too big to commit
    huge_code_cell(handins / "iso_huge_code_cell.ipynb", hostile.PREFIX, hostile.notebook)
    for name in HONEST:  # a per-run secret that only the honest hand-ins contain
        nb = json.loads((handins / f"{name}.ipynb").read_text(encoding="utf-8"))
        nb["cells"].append({"cell_type": "markdown", "id": "marker", "metadata": {},
                            "source": f"Firmado: {marker}"})
        (handins / f"{name}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    shutil.copyfile(handins / "zz_honest.ipynb", alone_dir / "zz_honest.ipynb")


def grade(path: Path, out: Path, common: list[str], env: dict, guard: SafetyNet) -> tuple[int, str, float]:
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


def results_of(out: Path) -> tuple[dict[str, GradeResult], dict[str, str]]:
    with Gradebook(out / "gradebook.sqlite") as book:
        rows = book.results()
    return ({r["student"]: from_data(GradeResult, r["result"]) for r in rows},
            {r["student"]: r["status"] for r in rows})


def plant_canary() -> tuple[str | None, Path | None]:
    """A secret only root can read; None when the tests do not run as root (no uid to drop to)."""
    if not IS_ROOT:
        return None, None
    secret = f"CANARY-{secrets.token_hex(12)}"
    path = Path("/root") / f".grader_canary_{secrets.token_hex(4)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, secret.encode())
    os.close(fd)
    return secret, path


def pwned_roots() -> list[Path]:
    import site

    roots = [Path(p) for p in ("/tmp", "/var/tmp", "/dev/shm", "/root", "/work")]
    return roots + [Path(p) for p in site.getsitepackages()] + [ROOT]


def remove_pwned(extra_roots: list[Path] = ()) -> list[str]:
    """Find (and delete: they are this test's debris) files named PWNED* in the usual places."""
    found = []
    for root in [*pwned_roots(), *extra_roots]:
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


def grader_files() -> list[Path]:
    return [*(ROOT / "grader").rglob("*.py"), *(ROOT / "rubrics").glob("*.yaml")]


def reap_leftovers(private_tmp: Path) -> list[str]:
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


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def texts(out: Path) -> dict[str, str]:
    texts = {}
    for path in out.rglob("*"):
        if path.is_file() and path.stat().st_size < 64 * 2**20:
            texts[str(path.relative_to(out))] = path.read_bytes().decode("utf-8", "replace")
    return texts


class Listener:
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


class SafetyNet:
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
