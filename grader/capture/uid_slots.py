"""A uid of its own for every kernel that runs at the same time (grader side, root only).

Kernels of one batch (`--jobs N`), or of two batches started side by side, must not be able to
signal each other, read each other's /proc entries or workspaces, or use up each other's
RLIMIT_NPROC: all of that follows from the uid. A slot is a lock file under LOCK_DIR held with
flock() for as long as the capture lasts, so the lock goes away with the process that held it,
even when it is killed. The uids have no passwd entry on purpose: nothing else on the machine owns
files or processes under them. Before a slot is handed out, and when it is released, every process
still running as its uid is killed.
"""

from __future__ import annotations

import fcntl
import os
import random
import tempfile
import time
from dataclasses import dataclass

import psutil

ENV_UID_BASE = "GRADER_SANDBOX_UID_BASE"
DEFAULT_UID_BASE = 1_990_000_000  # far above login (1000+), system and container sub-uid ranges
SLOTS = 256
LOCK_DIR = "/run/grader-sandbox"


@dataclass
class Slot:
    uid: int
    fd: int

    def release(self) -> None:
        kill_uid(self.uid)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)


def uid_base() -> int:
    return int(os.environ.get(ENV_UID_BASE, DEFAULT_UID_BASE))


def acquire() -> Slot:
    """Lock a free slot and return it; RuntimeError when all SLOTS are taken."""
    lock_dir = _lock_dir()
    base = uid_base()
    start = random.randrange(SLOTS)  # spread concurrent callers over the slots
    for i in range(SLOTS):
        n = (start + i) % SLOTS
        fd = os.open(os.path.join(lock_dir, f"uid-{n}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        kill_uid(base + n)  # leftovers of a grader that was killed before it could clean up
        return Slot(uid=base + n, fd=fd)
    raise RuntimeError(f"all {SLOTS} sandbox uid slots under {lock_dir} are in use")


def _lock_dir() -> str:
    """LOCK_DIR, or a fixed folder under the temporary directory where /run is not writable (every
    grader on the machine must agree on the folder for the locks to mean anything)."""
    for folder in (LOCK_DIR, os.path.join(tempfile.gettempdir(), "grader-sandbox-locks")):
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            if os.stat(folder).st_uid == os.geteuid():  # not a folder someone else planted
                return folder
        except OSError:
            continue
    raise RuntimeError(f"no folder for the sandbox's uid locks ({LOCK_DIR} is not writable)")


def kill_uid(uid: int, rounds: int = 20) -> int:
    """SIGKILL every process whose real or effective uid is `uid`, until none is left (a fork bomb
    keeps forking while it is being killed). Returns how many were killed."""
    killed = 0
    for _ in range(rounds):
        victims = []
        for proc in psutil.process_iter(["uids"]):
            uids = proc.info["uids"]
            if uids is not None and uid in (uids.real, uids.effective):
                victims.append(proc)
        if not victims:
            return killed
        for proc in victims:
            try:
                proc.kill()
                killed += 1
            except psutil.Error:
                pass
        time.sleep(0.05)
    return killed
