"""The fresh temporary folder one hand-in's kernel runs in (grader side of the sandbox).

Layout under a root folder (mode 0711: other users can pass through, not list it):
  spec/                     root only (0700): kernelspec, a copy of the launcher and mounts.json,
                            the kernel's mount plan (read by the launcher, never on a command line)
  newroot/                  mount point of the kernel's new root (see kernel/launcher.py)
  probe-<rand>/grader_probe*.py  COPIES of grader/capture/kernel/'s probe files (PROBE_FILES):
                            the kernel's only PYTHONPATH
  work-<rand>/              cwd and HOME of the kernel: a copy of the hand-in's files, and
    .keras/datasets/fashion-mnist/   the four Fashion-MNIST .gz files (KERAS_HOME)
  events-<rand>/            the probe writes events.jsonl and arrays/ here
  run-<rand>/               connection file and the ipc sockets
  kernel.log                the kernel process' own stdout/stderr
Folder names are random, and each concurrent kernel gets a uid of its own (`uid_slots.py`), so a
kernel of another hand-in running at the same time can neither guess nor open its way into this one.
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import secrets
import shutil
import stat
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from grader import data
from grader.capture import sandbox, uid_slots
from grader.capture.kernel import PROBE_FILES
from grader.load import Submission, is_ignored
from grader.options import Limits

KERNEL_DIR = Path(__file__).resolve().parent / "kernel"  # what runs in the student's process

MAX_HANDIN_BYTES = 200 * 2**20  # a hand-in folder bigger than this is copied only in part


@dataclass
class Workspace:
    root: Path
    work: Path
    probe_dir: Path
    events: Path
    runtime: Path
    spec_root: Path
    log: Path
    uid: int | None = None  # the kernel's uid when the grader drops privileges
    gid: int | None = None
    isolate_net: bool = False  # own mount, network and PID namespaces, and a new root
    keep: list[str] = field(default_factory=list)  # bound into the kernel's new root (besides /usr, /etc ...)
    hide: list[str] = field(default_factory=list)  # inside a kept folder, yet covered by an empty tmpfs
    scratch: list[str] = field(default_factory=list)  # world-writable: a private tmpfs in the kernel
    messages: list[str] = field(default_factory=list)
    slot: uid_slots.Slot | None = None

    def cleanup(self) -> None:
        if self.slot is not None:  # nothing of this uid may outlive the capture, nor reach the next
            self.slot.release()
            self.slot = None
        shutil.rmtree(self.root, ignore_errors=True)  # rmtree does not follow the student's symlinks


def create_workspace(sub: Submission, data_dir: Path | None, out_dir: Path | None = None, *,
                     drop_privileges: bool = True, isolate: bool = True,
                     private: Sequence[Path] = ()) -> Workspace:
    """`private`: more folders the kernel must not see (the rubric's, the retrain cache), on top of
    /root, the hand-ins' folder, the output's and the grader's own package."""
    root = Path(tempfile.mkdtemp(prefix="grader-capture-"))
    os.chmod(root, 0o711)

    def folder(name: str) -> Path:
        path = root / f"{name}-{secrets.token_hex(8)}"
        path.mkdir(mode=0o700)
        return path

    ws = Workspace(root=root, work=folder("work"), probe_dir=root / f"probe-{secrets.token_hex(8)}",
                   events=folder("events"), runtime=folder("run"), spec_root=root / "spec",
                   log=root / "kernel.log")
    ws.probe_dir.mkdir(mode=0o755)
    for source, name in PROBE_FILES.items():
        shutil.copyfile(KERNEL_DIR / source, ws.probe_dir / name)
        os.chmod(ws.probe_dir / name, 0o644)
    (ws.work / ".tmp").mkdir()
    _copy_handin(sub, ws)
    _copy_fashion_mnist(data_dir, ws)
    root_user = os.geteuid() == 0
    if isolate and root_user and _namespaces_work():
        ws.isolate_net = True
        ws.keep = sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), str(root)})
        # Everything else is simply absent from the kernel's root; these are the private folders that
        # lie inside a kept one (the grader installed into the virtualenv's site-packages).
        ws.hide = _hidden_inside(ws.keep, [pwd.getpwuid(0).pw_dir, Path(sub.path).resolve().parent,
                                           Path(out_dir).resolve().parent if out_dir else None,
                                           *grader_folders(), *private], str(root))
        ws.scratch = sandbox.scratch_folders()
    elif isolate:
        ws.messages.append("sandbox: no mount/network/PID namespaces (needs root); the kernel has network"
                           " access, shares /tmp and sees the grader's files and processes")
    python = [os.path.realpath(sys.executable), os.path.realpath(sys.base_prefix)]
    reachable = all(_others_can_reach(p, ws.keep if ws.isolate_net else None) for p in python)
    if drop_privileges and root_user and reachable:
        ws.slot = uid_slots.acquire()
        ws.uid = ws.gid = ws.slot.uid
        for folder in (ws.work, ws.events, ws.runtime):
            _chown_tree(folder, ws.uid, ws.gid)
    elif drop_privileges and root_user:
        ws.messages.append("sandbox: the Python installation is not readable by other users; the kernel runs as root")
    elif drop_privileges:
        ws.messages.append("sandbox: grader is not root; the kernel runs as the grader's own user")
    return ws


def grader_folders() -> list[Path]:
    """The grader's own package and data (source, rubrics, templates): world-readable files the
    kernel has no business reading (the rubric in particular)."""
    from grader import resources

    return [Path(__file__).resolve().parent.parent, resources.rubrics_dir(), resources.templates_dir()]


@functools.cache
def _namespaces_work() -> bool:
    return sandbox.namespaces_work()


def _hidden_inside(keep: list[str], candidates: list, workspace: str) -> list[str]:
    """The existing candidate folders that lie inside a kept folder (the workspace aside), outermost
    first and without the ones already inside another."""
    found: list[str] = []
    for candidate in candidates:
        if candidate is None:
            continue
        path = os.path.realpath(candidate)
        inside = any(path.startswith(k.rstrip("/") + "/") for k in keep)
        if inside and os.path.isdir(path) and not path.startswith(workspace + "/") and path not in found:
            found.append(path)
    found.sort(key=len)
    return [p for i, p in enumerate(found) if not any(p.startswith(q + "/") for q in found[:i])]


def _others_can_reach(path: str, keep: list[str] | None) -> bool:
    """Can a user other than the owner traverse every folder above `path`? In the kernel's new
    root (`keep` given) the folders above a kept one are made fresh (0755): only the part from
    the kept folder down counts."""
    folder = path if keep is not None and path in keep else os.path.dirname(path)
    while True:
        if not os.stat(folder).st_mode & stat.S_IXOTH:
            return False
        if folder == "/" or (keep is not None and folder in keep):
            return True
        folder = os.path.dirname(folder)


def install_kernelspec(ws: Workspace, limits: Limits, fsize_mb: int, nproc: int = 1024) -> None:
    """The kernelspec, the launcher's copy and (isolated) the root-only mount plan, in spec/."""
    folder = ws.spec_root / sandbox.KERNEL_NAME
    folder.mkdir(parents=True, mode=0o700, exist_ok=True)
    os.chmod(ws.spec_root, 0o700)
    args = ["--work", str(ws.work), "--log", str(ws.log), "--memory-mb", str(limits.memory_mb),
            "--fsize-mb", str(fsize_mb), "--nproc", str(nproc), "--probe-dir", str(ws.probe_dir)]
    if ws.isolate_net:
        plan = {"new_root": str(ws.root / "newroot"), "keep": ws.keep, "hide": ws.hide, "scratch": ws.scratch,
                "disk_mb": limits.disk_mb, "inodes": limits.inodes}
        (ws.root / "newroot").mkdir(mode=0o700, exist_ok=True)
        fd = os.open(folder / "mounts.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(plan, fh)
        args += ["--mounts", str(folder / "mounts.json")]
    if ws.uid is not None:
        args += ["--uid", str(ws.uid), "--gid", str(ws.gid)]
    spec = sandbox.kernelspec(sys.executable, sandbox.install_launcher(str(folder)), args)
    sandbox.write_kernelspec(str(ws.spec_root), spec)


def _chown_tree(folder: Path, uid: int, gid: int) -> None:
    os.chown(folder, uid, gid)
    for base, dirs, files in os.walk(folder):
        for name in dirs + files:
            os.chown(os.path.join(base, name), uid, gid, follow_symlinks=False)


def _copy_handin(sub: Submission, ws: Workspace) -> None:
    """Only this hand-in's files; .py files that live inside a ZIP are rebuilt from their cells
    so that `from utils import f` still works."""
    budget = MAX_HANDIN_BYTES
    path = Path(sub.path)
    if path.is_dir():
        for base, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if not is_ignored(d) and not os.path.islink(os.path.join(base, d))]
            for name in files:
                src = Path(base) / name
                if is_ignored(name) or src.is_symlink() or not src.is_file():
                    continue
                size = src.stat().st_size
                if size > budget:
                    ws.messages.append(f"hand-in file not copied (size budget): {src.relative_to(path)}")
                    continue
                budget -= size
                dst = ws.work / src.relative_to(path)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
    elif path.is_file() and path.suffix.lower() != ".zip":
        shutil.copyfile(path, ws.work / path.name)
    for rel in sub.files:
        target = ws.work / rel
        if not rel.lower().endswith(".py") or target.exists() or ".." in Path(rel).parts:
            continue
        text = "\n\n".join(c.source for c in sub.cells if c.origin.file == rel and c.cell_type == "code")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def _copy_fashion_mnist(data_dir: Path | None, ws: Workspace) -> None:
    candidates = [Path(data_dir)] if data_dir else []
    if os.environ.get(data.ENV_DATA_DIR):
        candidates.append(Path(os.environ[data.ENV_DATA_DIR]))
    candidates += [data.DEBIAN_DIR, data.default_keras_home() / "datasets" / "fashion-mnist"]
    for folder in candidates:
        if all((folder / name).is_file() for name in data.FILES.values()):
            target = ws.work / ".keras" / "datasets" / "fashion-mnist"
            target.mkdir(parents=True)
            for name in data.FILES.values():
                shutil.copyfile(folder / name, target / name)  # a copy: the kernel may write to it
            return
    ws.messages.append("sandbox: Fashion-MNIST files not found; load_data() in the kernel will fail offline")
