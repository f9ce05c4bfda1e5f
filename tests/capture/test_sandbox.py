"""The kernel's isolation as root: PID namespace, private world-writable folders, a uid per
concurrent kernel, and nothing left running after the capture. Real kernels, no Keras.

Skipped when the tests do not run as root or the machine refuses namespaces (then the sandbox runs
degraded, which tests/capture/test_capture.py covers through its messages).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

import grader
from grader.capture import sandbox, uid_slots
from grader.capture.runner import capture_submission
from grader.load import load_submission
from grader.options import Limits
from grader.resources import default_rubric, templates_dir
from tests.builders import ROOT

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="uid drop and namespaces need root"),
    pytest.mark.skipif(os.geteuid() == 0 and not sandbox.namespaces_work(), reason="no namespaces here"),
]
LIMITS = Limits(cell_timeout_s=60, total_timeout_s=120, memory_mb=2000)

PROBE_CELL = """\
import json, os, sys, time
marker = {marker!r}
for folder in ('/tmp', '/var/tmp', '/dev/shm'):
    with open(os.path.join(folder, 'PWNED-' + marker), 'w') as fh:
        fh.write('x')
if os.fork() == 0:  # a double-forked daemon that also leaves the workspace
    os.setsid()
    if os.fork() == 0:
        os.chdir('/')
        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(600)', marker])
    os._exit(0)
time.sleep({hold})
print('SANDBOX ' + json.dumps({{
    'uid': os.getuid(), 'pid': os.getpid(), 'ppid': os.getppid(),
    'pids': sorted(int(p) for p in os.listdir('/proc') if p.isdigit()),
    'tmp': sorted(os.listdir('/tmp')), 'root': os.access('/root', os.R_OK),
    'grader_files': [p for p in {private!r} if os.path.exists(p)],
}}))
"""


def _handin(folder: Path, marker: str, hold: float) -> Path:
    folder.mkdir(parents=True)
    path = folder / "sandbox_probe.py"
    private = [str(default_rubric()), str(Path(grader.__file__).resolve()), str(templates_dir() / "report.html")]
    path.write_text("# %%\n" + PROBE_CELL.format(marker=marker, hold=hold, private=private), encoding="utf-8")
    return path


def _seen(out: Path) -> dict:
    nb = json.loads((out / "executed.ipynb").read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "SANDBOX " in text, text[-2000:]
    return json.loads(text.split("SANDBOX ", 1)[1].splitlines()[0])


def _capture(tmp_path: Path, name: str, marker: str, hold: float, seen: dict) -> None:
    sub = load_submission(_handin(tmp_path / name / "in", marker, hold))
    trace = capture_submission(sub, tmp_path / name / "out", limits=LIMITS)
    assert trace.status == "ok", (trace.errors, trace.messages)
    seen[name] = _seen(tmp_path / name / "out")


def _alive(marker: str) -> list[str]:
    return [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])
            if marker in " ".join(p.info["cmdline"] or [])]


def test_kernels_are_isolated_from_each_other_and_leave_nothing(tmp_path: Path) -> None:
    markers = {name: f"sandbox-{secrets.token_hex(6)}" for name in ("a", "b")}
    seen: dict = {}
    # two captures at the same time, each holding its kernel alive while the other runs
    threads = [threading.Thread(target=_capture, args=(tmp_path, name, markers[name], 4.0, seen))
               for name in markers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert set(seen) == {"a", "b"}, seen
    a, b = seen["a"], seen["b"]
    base = uid_slots.uid_base()
    for s in (a, b):
        assert base <= s["uid"] < base + uid_slots.SLOTS  # neither root nor a shared `nobody`
        assert s["ppid"] == 1 and s["pid"] < 50  # PID namespace: init is the grader's launcher
        assert max(s["pids"]) < 100 and len(s["pids"]) < 10, s["pids"]  # sees only its own processes
        assert not s["root"]
        assert s["grader_files"] == []  # rubric, grader source and templates are hidden, though world-readable
    assert a["uid"] != b["uid"]
    assert f"PWNED-{markers['a']}" not in b["tmp"] and f"PWNED-{markers['b']}" not in a["tmp"]
    for marker in markers.values():
        for folder in ("/tmp", "/var/tmp", "/dev/shm"):  # the private tmpfs went away with the kernel
            assert not os.path.exists(os.path.join(folder, "PWNED-" + marker))
        assert not _alive(marker), _alive(marker)  # the daemon died with the namespace
    for s in (a, b):
        assert not [p.pid for p in psutil.process_iter(["uids"]) if p.info["uids"] and
                    s["uid"] in (p.info["uids"].real, p.info["uids"].effective)]


def test_uid_slot_kills_what_its_uid_left_running() -> None:
    slot = uid_slots.acquire()
    other = uid_slots.acquire()
    assert slot.uid != other.uid
    pid = os.fork()
    if pid == 0:  # a process of the slot's uid, as a kernel's leftover would be
        os.setgid(slot.uid)
        os.setuid(slot.uid)
        os.execv("/bin/sleep", ["sleep", "600"])
    try:
        psutil.Process(pid).wait(timeout=0.3)
    except psutil.TimeoutExpired:
        pass
    slot.release()
    other.release()
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9


def test_kernel_dies_with_the_grader_process(tmp_path: Path) -> None:
    """A grader killed with SIGKILL (no cleanup runs) takes its kernel's whole namespace along."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "sleeper.py").write_text("# %%\nimport time\ntime.sleep(300)\n", encoding="utf-8")
    code = ("import sys; from pathlib import Path; from grader.capture.runner import capture_submission;"
            "from grader.options import Limits;"
            "from grader.load import load_submission;"
            "capture_submission(load_submission(Path(sys.argv[1])), Path(sys.argv[2]),"
            " limits=Limits(cell_timeout_s=300, total_timeout_s=300))")
    grader = subprocess.Popen([sys.executable, "-c", code, str(folder / "sleeper.py"), str(tmp_path / "out")],
                              cwd=ROOT)
    base = uid_slots.uid_base()
    tree: list[psutil.Process] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(base <= p.uids().real for p in tree):
        time.sleep(0.5)
        try:
            tree = psutil.Process(grader.pid).children(recursive=True)
        except psutil.Error:
            tree = []
    assert any(base <= p.uids().real for p in tree), "the kernel never started"
    grader.kill()
    grader.wait()
    _gone, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive, [(p.pid, p.cmdline()[:3]) for p in alive]
