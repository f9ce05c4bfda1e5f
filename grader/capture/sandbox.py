"""The student kernel's sandbox: a private folder, a scrubbed environment, rlimits, a uid of its own,
and (as root) its own mount, network and PID namespaces.

Two halves. `kernelspec()` here (grader side) writes the kernel.json that starts
`grader/capture/kernel/launcher.py`; its `main()` is the launcher (`python -I sandbox.py ... -- python -m ipykernel_launcher -f
CONN`): it applies the limits, isolates, drops privileges and starts the kernel. The launcher half
imports only the standard library, because it runs before the privileges are dropped.

As root, with namespaces (`--isolate`), three processes:
  launcher (grader's PID namespace, the process jupyter_client watches)
   └─ init (PID 1 of a new PID namespace, root, the grader's code only)
       └─ kernel (uid of its own, its own session) and everything the student starts
The launcher unshares mount, network and PID namespaces; init mounts a /proc that shows only this
namespace, covers /root, the hand-ins, the grader's output and every world-writable folder (/tmp,
/var/tmp, /dev/shm, /run/lock) with private tmpfs mounts (binding back the Python installation and
this workspace), then starts the kernel and reaps orphans. When the kernel exits, or the launcher
dies (PR_SET_PDEATHSIG), init exits and the Linux kernel kills every process left in the namespace:
double-forked daemons die with it. SIGINT (jupyter's interrupt) and SIGTERM are passed on to the
kernel by init, which is why the kernel gets a session of its own (no double interrupt).

What it stops:
- the grader's environment (secrets, tokens, PATH tricks): the kernel gets a fresh, minimal env;
  HOME is the work folder, KERAS_HOME holds only the four Fashion-MNIST files;
- reading /root, other hand-ins, the grader's cache, other kernels' workspaces: another uid, and the
  mount namespace hides them;
- seeing or signalling other kernels (PID namespace, and a different uid: /proc of another uid's
  process is not readable, kill() is refused);
- the network (empty network namespace; the client talks over unix sockets, transport "ipc");
- files left outside the workspace (private tmpfs over every world-writable folder);
- runaway resources: RLIMIT_DATA (memory, which TensorFlow tolerates where RLIMIT_AS does not),
  RLIMIT_FSIZE (one huge file), RLIMIT_NPROC (fork bombs; per uid, so one kernel's bomb does not
  starve another), RLIMIT_CORE=0. Time and RSS are watched from the grader (runner.py).

What it does not stop: reading world-readable system files, the grader's own source and the Python
installation; in-memory tampering with the probe (its output is validated, never trusted, and fits
it did not see are found by static analysis). Steps that are not available (not root, no
namespaces) are skipped and reported in `messages`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from grader.capture.kernel import launcher

KERNEL_NAME = "grader-sandbox"


def namespaces_work() -> bool:
    """True when this process may give a child its own mount, network and PID namespaces (root,
    and not forbidden by a container's seccomp profile)."""
    try:
        probe = ["unshare", "-m", "-n", "-p", "--fork", "--mount-proc", "true"]
        return subprocess.run(probe, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def scratch_folders() -> list[str]:
    """World-writable folders a kernel could leave files in: each gets a private tmpfs."""
    found = []
    for path in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock"):
        real = os.path.realpath(path)
        try:
            if os.stat(real).st_mode & 0o002 and real not in found:
                found.append(real)
        except OSError:
            pass
    return found


def install_launcher(folder: str) -> str:
    """A copy of the launcher in the capture's root-only folder: started from the grader's checkout,
    its path in /proc/1/cmdline would name the checkout inside the sandbox."""
    path = os.path.join(folder, "launcher.py")
    shutil.copyfile(launcher.__file__, path)
    os.chmod(path, 0o600)
    return path


def kernelspec(python: str, launcher_path: str, launcher_args: list[str]) -> dict:
    """The kernel.json that starts the kernel through the launcher at `launcher_path`."""
    argv = [python, "-I", launcher_path, *launcher_args,
            "--", python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    return {"argv": argv, "display_name": "grader sandbox", "language": "python",
            "interrupt_mode": "signal", "metadata": {"debugger": False}}


def write_kernelspec(spec_root: str, spec: dict) -> str:
    folder = os.path.join(spec_root, KERNEL_NAME)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    with open(os.path.join(folder, "kernel.json"), "w", encoding="utf-8") as fh:
        json.dump(spec, fh)
    return spec_root
