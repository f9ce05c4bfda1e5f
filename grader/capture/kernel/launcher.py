"""The kernel launcher: runs as `python -I launcher.py ... -- python -m ipykernel_launcher -f CONN`.

It applies the limits, isolates, drops privileges and starts the kernel (the design and what it
stops are described in grader/capture/sandbox.py, its grader-side half). It imports only the
standard library, because it runs before the privileges are dropped, and nothing of grader.
"""


from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
import time

_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
_CLONE_NEWNS, _CLONE_NEWPID, _CLONE_NEWNET = 0x00020000, 0x20000000, 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_BIND, _MS_REC, _MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
_PR_SET_PDEATHSIG = 1
SCRATCH_SIZE = "256m"  # each private /tmp-like tmpfs; its pages are memory outside the kernel's RSS



def main(argv: list[str]) -> None:
    """Launcher: `sandbox.py --work W --log L [--uid U --gid G --nproc N] [--isolate MOUNTS_JSON]
    --memory-mb M --fsize-mb F --probe-dir P -- python -m ipykernel_launcher -f CONN`. Never returns."""
    sep = argv.index("--")
    opts = dict(zip(argv[:sep:2], argv[1:sep:2]))
    command = argv[sep + 1:]
    memory = int(opts["--memory-mb"]) * 2**20
    fsize = int(opts["--fsize-mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    log = os.open(opts["--log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    if "--isolate" not in opts:
        _exec_kernel(opts, command)
    libc = ctypes.CDLL(None, use_errno=True)
    grader = os.getppid()
    _check(libc.unshare(_CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID), "unshare")
    init = os.fork()
    if init == 0:
        _init(libc, opts, command, launcher=os.getppid())
    # The launcher: jupyter_client's handle on the kernel. Its SIGINT reaches init through the
    # process group; SIGTERM is passed on; SIGKILL kills init through PR_SET_PDEATHSIG. When the
    # grader that started it dies (what JPY_PARENT_PID does for a plain kernel), init is killed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: _signal(init, signal.SIGTERM))
    os._exit(_wait_for(init, grader))


def _init(libc: ctypes.CDLL, opts: dict, command: list[str], launcher: int) -> None:
    """PID 1 of the kernel's namespace. Never returns."""
    try:
        _check(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
        if os.getppid() != launcher:  # the launcher died before prctl took effect
            os._exit(1)
        _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
        _mount(libc, "proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
        _cover(libc, json.loads(opts["--isolate"]))
    except Exception as exc:  # a half-built sandbox must not run student code
        print(f"grader sandbox: isolation failed: {exc}", file=sys.stderr, flush=True)
        os._exit(70)
    kernel = os.fork()
    if kernel == 0:
        os.setsid()
        _exec_kernel(opts, command)
    signal.signal(signal.SIGINT, lambda *_: _signal(kernel, signal.SIGINT))
    signal.signal(signal.SIGTERM, lambda *_: _signal(kernel, signal.SIGKILL))
    # Reap everything (orphans are re-parented to init); leave with the kernel, which makes the
    # Linux kernel kill whatever else is still running in this PID namespace.
    while True:
        try:
            pid, status = os.wait()
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(1)
        if pid == kernel:
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _cover(libc: ctypes.CDLL, mounts: dict) -> None:
    """An empty tmpfs over each folder to hide (0711) and each scratch folder (1777, private to this
    kernel), with the `keep` folders under them (Python installation, workspace) bound back in
    place from a file descriptor opened before the tmpfs covered them."""
    covers = [(path, "mode=1777,size=" + SCRATCH_SIZE) for path in mounts["scratch"]]
    covers += [(path, "mode=0711,size=1m") for path in mounts["hide"]]
    for path, options in sorted(covers, key=lambda c: len(c[0])):
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        keeps = [k for k in mounts["keep"] if k.startswith(path.rstrip("/") + "/") and os.path.isdir(k)]
        fds = [(keep, os.open(keep, os.O_PATH | os.O_DIRECTORY)) for keep in keeps]
        _mount(libc, "tmpfs", path, "tmpfs", _MS_NOSUID | _MS_NODEV, options)
        for keep, fd in fds:
            os.makedirs(keep, exist_ok=True)
            _mount(libc, f"/proc/self/fd/{fd}", keep, None, _MS_BIND | _MS_REC)
            os.close(fd)


def _exec_kernel(opts: dict, command: list[str]) -> None:
    """Drop privileges, scrub the environment and become the kernel. Never returns."""
    if "--uid" in opts:
        uid, gid = int(opts["--uid"]), int(opts["--gid"])
        connection_file = command[command.index("-f") + 1]
        os.chown(connection_file, uid, gid)  # written 0600 by the client; the kernel must read it
        nproc = int(opts["--nproc"])
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    work = opts["--work"]
    os.chdir(work)
    os.umask(0o077)
    env = {
        "PATH": os.path.dirname(command[0]) + ":" + _SAFE_PATH,
        "HOME": work,
        "USER": "alumno",  # the kernel's uid has no passwd entry; getpass.getuser() reads these
        "LOGNAME": "alumno",
        "TMPDIR": os.path.join(work, ".tmp"),
        "KERAS_HOME": os.path.join(work, ".keras"),
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": os.path.join(work, ".config", "matplotlib"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": opts["--probe-dir"],
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "PIP_NO_INDEX": "1",  # `!pip install x` fails at once instead of retrying a network it lacks
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    # ipykernel exits when the grader that started it dies. In a PID namespace the grader's pid
    # means nothing (the kernel's parent is init): there PR_SET_PDEATHSIG does the same job.
    if "JPY_PARENT_PID" in os.environ and "--isolate" not in opts:
        env["JPY_PARENT_PID"] = os.environ["JPY_PARENT_PID"]
    os.execve(command[0], command, env)


def _wait_for(pid: int, grader: int) -> int:
    """Wait for `pid`; kill it if the grader process (our parent) goes away meanwhile."""
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 1
        if done:
            return os.waitstatus_to_exitcode(status) & 0xFF
        if os.getppid() != grader:
            _signal(pid, signal.SIGKILL)
        time.sleep(0.2)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _mount(libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {target}")


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


if __name__ == "__main__":
    main(sys.argv[1:])
