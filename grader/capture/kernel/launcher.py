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
import shutil
import signal
import sys
import time

_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
_CLONE_NEWNS, _CLONE_NEWPID, _CLONE_NEWNET = 0x00020000, 0x20000000, 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_BIND, _MS_REC, _MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
_PR_SET_PDEATHSIG = 1
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine, 155)
_MNT_DETACH = 2
_CLEAN = "GRADER_LAUNCHER_CLEAN"
# Bound into the kernel's new root as they are (read access only: they belong to root). /dev brings
# /dev/null and /dev/urandom; /sys, CPU facts for TensorFlow; the font cache (else rebuilt in HOME).
_SYSTEM = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/dev", "/sys",
           "/var/cache/fontconfig")
SCRATCH_SIZE = "256m"  # each private /tmp-like tmpfs; its pages are memory outside the kernel's RSS



def main(argv: list[str]) -> None:
    """Launcher: `launcher.py --work W --log L [--uid U --gid G --nproc N] [--mounts FILE]
    --memory-mb M --fsize-mb F --probe-dir P -- python -m ipykernel_launcher -f CONN`. Never returns.

    FILE (root-only, 0600) holds the mount plan: what the kernel keeps, never what it is hidden
    from, and it is not on this command line (/proc/1/cmdline is readable inside)."""
    if os.environ.get(_CLEAN) != "1":
        # The launcher and init keep the environment they were started with in /proc/PID/environ:
        # start again with nothing of the grader's (its PYTHONPATH, VIRTUAL_ENV, PWD name folders).
        env = {_CLEAN: "1"}
        if "JPY_PARENT_PID" in os.environ:
            env["JPY_PARENT_PID"] = os.environ["JPY_PARENT_PID"]
        os.execve(sys.executable, [sys.executable, "-I", os.path.abspath(__file__), *argv], env)
    sep = argv.index("--")
    opts = dict(zip(argv[:sep:2], argv[1:sep:2]))
    command = argv[sep + 1:]
    plan = None
    if "--mounts" in opts:
        with open(opts["--mounts"], encoding="utf-8") as fh:
            plan = json.load(fh)
    memory = int(opts["--memory-mb"]) * 2**20
    fsize = int(opts["--fsize-mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    log = os.open(opts["--log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    # Whatever the grader's process had open (another hand-in's files, the gradebook, pipes) must
    # not reach student code: the kernel opens its own sockets from the connection file.
    os.closerange(3, _max_fd())
    if plan is None:
        _exec_kernel(opts, command)
    libc = ctypes.CDLL(None, use_errno=True)
    grader = os.getppid()
    _check(libc.unshare(_CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID), "unshare")
    init = os.fork()
    if init == 0:
        _init(libc, opts, plan, command, launcher=os.getppid())
    # The launcher: jupyter_client's handle on the kernel. Its SIGINT reaches init through the
    # process group; SIGTERM is passed on; SIGKILL kills init through PR_SET_PDEATHSIG. When the
    # grader that started it dies (what JPY_PARENT_PID does for a plain kernel), init is killed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: _signal(init, signal.SIGTERM))
    os._exit(_wait_for(init, grader))


def _max_fd() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if 0 < soft < 2**20 else 2**16


def _init(libc: ctypes.CDLL, opts: dict, plan: dict, command: list[str], launcher: int) -> None:
    """PID 1 of the kernel's namespace. Never returns."""
    try:
        _check(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
        if os.getppid() != launcher:  # the launcher died before prctl took effect
            os._exit(1)
        _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
        _new_root(libc, plan, opts)
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


def _new_root(libc: ctypes.CDLL, plan: dict, opts: dict) -> None:
    """Build the kernel's whole file system on an empty tmpfs and pivot into it: the system folders,
    the Python installation and the capture's own folder bound in, private tmpfs scratch folders,
    a size- and inode-limited tmpfs for the work folder, a /proc of this PID namespace. Anything
    else (the grader's checkout, the hand-ins, the output, the cache, /root, /home, /srv ...) is
    not there at all, wherever it is installed, and no mount names it."""
    new = plan["new_root"]
    _mount(libc, "tmpfs", new, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0755,size=1m,nr_inodes=4096")
    mounts = {p: "system" for p in _SYSTEM if os.path.isdir(p)}
    mounts.update({p: "keep" for p in plan["keep"] if p not in mounts})
    mounts.update({p: "scratch" for p in plan["scratch"]})
    mounts.update({p: "hide" for p in plan["hide"]})
    mounts.update({"/proc": "proc", opts["--work"]: "work"})
    for path, kind in sorted(mounts.items(), key=lambda m: (m[0].count("/"), m[0])):
        target = new + path
        if kind == "system" and os.path.islink(path):  # /bin -> usr/bin on a merged /usr
            os.symlink(os.readlink(path), target)
            continue
        _make_dirs(new, path)
        if kind == "system":  # with what is mounted below (/dev/pts, /sys/fs/cgroup)
            _mount(libc, path, target, None, _MS_BIND | _MS_REC)
        elif kind == "keep":  # not recursive: the new root's own mount point lies below one of them
            _mount(libc, path, target, None, _MS_BIND)
        elif kind == "scratch":
            _mount(libc, "tmpfs", target, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=1777,size=" + SCRATCH_SIZE)
        elif kind == "hide":
            _mount(libc, "tmpfs", target, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0711,size=1m")
        elif kind == "proc":
            _mount(libc, "proc", target, "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
        else:
            _work_quota(libc, path, target, plan["disk_mb"], plan["inodes"], opts)
    old = os.path.join(new, ".old-root")
    os.mkdir(old, 0o700)
    _check(libc.syscall(_SYS_PIVOT_ROOT, new.encode(), old.encode()), "pivot_root")
    os.chdir("/")
    _check(libc.umount2(b"/.old-root", _MNT_DETACH), "umount old root")
    os.rmdir("/.old-root")


def _make_dirs(new: str, path: str) -> None:
    """The folders of `path` under the new root, each 0711 (to pass through, not to list): the
    kernel may reach /root/.pyenv/versions/3.11 without seeing what else /root held."""
    current = new
    for part in path.strip("/").split("/"):
        current = os.path.join(current, part)
        if not os.path.isdir(current):
            os.mkdir(current)
            os.chmod(current, 0o711)


def _work_quota(libc: ctypes.CDLL, source: str, target: str, disk_mb: int, inodes: int, opts: dict) -> None:
    """The work folder as a tmpfs of `disk_mb` and `inodes`, holding a copy of what the grader laid
    out there (the hand-in, the data set): a disk or inode flood fills this tmpfs and stops with
    ENOSPC, never the grader's disk."""
    owner = f",uid={opts['--uid']},gid={opts['--gid']}" if "--uid" in opts else ""
    _mount(libc, "tmpfs", target, "tmpfs", _MS_NOSUID | _MS_NODEV,
           f"mode=0700,size={disk_mb}m,nr_inodes={inodes}{owner}")
    for base, dirs, files in os.walk(source):
        rel = os.path.relpath(base, source)
        dest = os.path.normpath(os.path.join(target, rel))
        for name in dirs:
            if not os.path.islink(os.path.join(base, name)):
                os.makedirs(os.path.join(dest, name), mode=0o700, exist_ok=True)
        for name in files:
            src = os.path.join(base, name)
            if not os.path.islink(src):
                shutil.copyfile(src, os.path.join(dest, name))
    if "--uid" in opts:
        uid, gid = int(opts["--uid"]), int(opts["--gid"])
        for base, dirs, files in os.walk(target):
            for name in dirs + files:
                os.chown(os.path.join(base, name), uid, gid, follow_symlinks=False)


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
    if "JPY_PARENT_PID" in os.environ and "--mounts" not in opts:
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
