"""The kernel's isolation as root: PID namespace, private world-writable folders, a uid per
concurrent kernel, and nothing left running after the capture. Real kernels, no Keras.

Skipped when the tests do not run as root or the machine refuses namespaces (then the sandbox runs
degraded, which tests/capture/test_capture.py covers through its messages).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
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


# What a kernel can find out about the grader: its open files, its sandbox's command line,
# environment and mounts, and the files of a grader installed in a checkout outside /tmp.
SNOOP_CELL = """\
import json, os
def read(path, limit=200000):
    try:
        with open(path, 'rb') as fh:
            return fh.read(limit).replace(bytes(1), b' ').decode('utf-8', 'replace')
    except OSError as exc:
        return 'ERR ' + type(exc).__name__
fds = {{}}
for fd in os.listdir('/proc/self/fd'):
    try:
        fds[fd] = os.readlink('/proc/self/fd/' + fd)
    except OSError:
        continue
texts = {{fd: read('/proc/self/fd/' + fd) for fd, target in fds.items() if target.startswith('/')}}
print('SANDBOX ' + json.dumps({{
    'fds': fds, 'fd_texts': texts, 'cmdline': read('/proc/1/cmdline'), 'environ': read('/proc/1/environ'),
    'mounts': read('/proc/self/mounts'), 'mountinfo': read('/proc/self/mountinfo'),
    'readable': {{p: read(p) for p in {paths!r}}}, 'exists': [p for p in {paths!r} if os.path.exists(p)],
}}))
"""


def _checkout_outside_tmp(root: Path, secret: str) -> dict[str, Path]:
    """A copy of this grader laid out as `make grade` uses a clone: the package, .git, submissions/
    with another student's hand-in, reports/ and a stale build/ rubric, all holding `secret`."""
    repo = ROOT
    for name in ("grader", "rubrics", "templates"):
        shutil.copytree(repo / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "README.md").write_text(f"# grader {secret}\n", encoding="utf-8")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    with (root / ".git" / "config").open("a", encoding="utf-8") as fh:
        fh.write(f"# {secret}\n")
    stale = root / "build" / "lib" / "grader" / "rubrics" / "trabajo2.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text(f"# {secret}\n", encoding="utf-8")
    other = root / "submissions" / "ana" / "trabajo2.py"
    other.parent.mkdir(parents=True)
    other.write_text(f"# %%\nprint('{secret}')\n", encoding="utf-8")
    (root / "reports").mkdir()
    (root / "reports" / "ana.html").write_text(secret, encoding="utf-8")
    return {"readme": root / "README.md", "git": root / ".git" / "config", "stale": stale, "other": other,
            "report": root / "reports" / "ana.html"}


def test_kernel_of_a_grader_installed_outside_tmp_sees_no_fd_name_or_file_of_it(tmp_path: Path) -> None:
    secret = f"SECRET-{secrets.token_hex(8)}"
    root = Path(tempfile.mkdtemp(prefix="grader-h2-checkout-", dir="/srv"))
    try:
        os.chmod(root, 0o755)
        private = _checkout_outside_tmp(root, secret)
        paths = [str(p) for p in private.values()] + [str(root / "submissions"), str(root)]
        handin = root / "submissions" / "zz_snoop" / "snoop.py"
        handin.parent.mkdir(parents=True)
        handin.write_text("# %%\n" + SNOOP_CELL.format(paths=paths), encoding="utf-8")
        # The grader process holds another hand-in open, inheritable, while it starts the kernel.
        code = ("import os, sys; from pathlib import Path; from grader.capture.runner import capture_submission;"
                "from grader.options import Limits; from grader.load import load_submission;"
                "fd = os.open(sys.argv[3], os.O_RDONLY); os.set_inheritable(fd, True);"
                "t = capture_submission(load_submission(Path(sys.argv[1])), Path(sys.argv[2]),"
                " limits=Limits(cell_timeout_s=60, total_timeout_s=120, memory_mb=2000));"
                "print(t.status, t.errors, t.messages)")
        env = dict(os.environ, PYTHONPATH=str(root))
        done = subprocess.run([sys.executable, "-c", code, str(handin), str(root / "reports" / "work"),
                               str(private["other"])], cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and done.stdout.startswith("ok"), done.stdout + done.stderr
        seen = _seen(root / "reports" / "work")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert seen["exists"] == [], seen["exists"]
    assert all(text.startswith("ERR") for text in seen["readable"].values()), seen["readable"]
    kinds = ("pipe:", "socket:", "anon_inode:")
    for fd, target in seen["fds"].items():  # streams, zmq sockets, the kernel's own files only
        assert target.startswith(kinds) or "/grader-capture-" in target or target == "/dev/null", (fd, target)
    assert not any(secret in text for text in seen["fd_texts"].values())
    for name in ("cmdline", "environ", "mounts", "mountinfo"):
        assert str(root) not in seen[name] and secret not in seen[name], (name, seen[name][:3000])
    assert "grader-capture-" in seen["cmdline"]  # it was read: the launcher's copy, not the checkout's
    assert sys.prefix not in seen["environ"]


QUOTA_CELLS = [
    "with open('grande.bin', 'wb') as fh:\n    for _ in range(200):\n        fh.write(bytes(2**20))",
    "import os\nos.makedirs('muchos', exist_ok=True)\nfor i in range(5000):\n    open(f'muchos/{i}', 'w').close()",
    "import os\nos.remove('grande.bin')\nprint('sigue', len(os.listdir('muchos')))",
]


def test_disk_and_inode_floods_stop_at_the_work_folder_quota(tmp_path: Path) -> None:
    from grader.pipeline import _errors
    from grader.rules import load_rubric

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "flood.py").write_text("".join(f"# %%\n{c}\n" for c in QUOTA_CELLS), encoding="utf-8")
    sub = load_submission(folder / "flood.py")
    limits = Limits(cell_timeout_s=60, total_timeout_s=120, memory_mb=2000, disk_mb=64, inodes=1000)
    trace = capture_submission(sub, tmp_path / "out", limits=limits)
    by_cell = {e.cell: e for e in trace.errors}
    assert set(by_cell) == {0, 1}, trace.errors
    assert all(e.limit == "disk" and e.limit_value == 64 and "No space left" in e.evalue for e in by_cell.values())
    nb = json.loads((tmp_path / "out" / "executed.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for o in nb["cells"][2]["outputs"])
    count = int(printed.split()[1])
    assert 500 < count < 1000, printed  # the inode limit, less the hand-in's and the data set's files
    messages = [e["message"] for e in _errors(sub, trace, load_rubric(None).messages) if e["stage"] == "cell"]
    assert messages and all("espacio de disco" in m and "64 MB" in m for m in messages), messages
