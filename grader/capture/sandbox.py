"""The student kernel's sandbox: a private folder, a scrubbed environment, rlimits, another uid.

Two halves in one file. `create_sandbox()` (grader side) lays out a fresh temporary folder and a
kernelspec; `main()` is the launcher the kernelspec runs (`python -I sandbox.py ... -- python -m
ipykernel_launcher -f CONN`): it applies the limits, drops privileges and execs the kernel. The
launcher half imports only the standard library, because it runs before the privileges are dropped.

What it stops:
- the grader's environment (secrets, tokens, PATH tricks): the kernel gets a fresh, minimal env;
  HOME is the work folder, KERAS_HOME holds only the four Fashion-MNIST files;
- reading /root, other hand-ins, the grader's cache (when the grader runs as root): the kernel runs
  as `nobody` in a folder that holds only a copy of this hand-in's files;
- the network and other hand-ins (when `unshare -m -n` works, i.e. as root): the kernel gets an
  empty network namespace (it talks to the client over unix sockets, transport "ipc") and its own
  mount namespace where /root, the folder holding the hand-ins and the grader's output folder are
  covered by an empty tmpfs (the Python installation and the workspace are bound back);
- runaway resources: RLIMIT_DATA (memory, which TensorFlow tolerates where RLIMIT_AS does not),
  RLIMIT_FSIZE (one huge file), RLIMIT_NPROC (fork bombs, only with the uid drop), RLIMIT_CORE=0.
  Time and RSS are watched from the grader (runner.py).

What it does not stop: reading world-readable files (system files, the grader's own source, the
Python installation); filling the disk with many files under the size limit; kernels of other
hand-ins that run at the same time under the same `nobody` uid seeing each other's processes;
in-memory tampering with the probe (its output is validated, never trusted). Hardening steps that
are not available (not root, no unshare) are skipped and reported in `messages`.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

KERNEL_NAME = "grader-sandbox"
_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


def main(argv: list[str]) -> None:
    """Launcher: `sandbox.py --work W --log L [--uid U --gid G] --memory-mb M --fsize-mb F
    --nproc N --probe-dir P -- python -m ipykernel_launcher -f CONN`. Never returns."""
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
    if "--mounts" in opts:
        _hide_paths(json.loads(opts["--mounts"]))
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
    if "JPY_PARENT_PID" in os.environ:  # ipykernel exits when the grader that started it dies
        env["JPY_PARENT_PID"] = os.environ["JPY_PARENT_PID"]
    os.execve(command[0], command, env)


def _hide_paths(mounts: dict) -> None:
    """In the kernel's own mount namespace: an empty tmpfs over each `hide` folder (/root, the
    folder of all hand-ins, the grader's output), with the `keep` folders under them (the Python
    installation, the workspace) bound back in place."""
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    for number, hidden in enumerate(mounts["hide"]):
        keeps = [k for k in mounts["keep"] if k.startswith(hidden.rstrip("/") + "/")]
        stashes = []
        for i, keep in enumerate(keeps):
            stash = os.path.join(mounts["stash"], f"{number}-{i}")
            os.mkdir(stash, 0o700)
            subprocess.run(["mount", "--bind", keep, stash], check=True)
            stashes.append((keep, stash))
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0711,size=1m", "tmpfs", hidden], check=True)
        for keep, stash in stashes:
            os.makedirs(keep, exist_ok=True)
            subprocess.run(["mount", "--bind", stash, keep], check=True)


def unshare_works() -> bool:
    """True when `unshare -m -n` can give a process its own mount and network namespaces."""
    try:
        return subprocess.run(["unshare", "-m", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def kernelspec(python: str, launcher_args: list[str], unshare: bool) -> dict:
    """The kernel.json that starts the kernel through this launcher."""
    argv = [python, "-I", os.path.abspath(__file__), *launcher_args,
            "--", python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    if unshare:
        argv = ["unshare", "-m", "-n", "--", *argv]
    return {"argv": argv, "display_name": "grader sandbox", "language": "python",
            "interrupt_mode": "signal", "metadata": {"debugger": False}}


def write_kernelspec(spec_root: str, spec: dict) -> str:
    folder = os.path.join(spec_root, KERNEL_NAME)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "kernel.json"), "w", encoding="utf-8") as fh:
        json.dump(spec, fh)
    return spec_root


if __name__ == "__main__":
    main(sys.argv[1:])
