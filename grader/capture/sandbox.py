"""The student kernel's sandbox: a private folder, a scrubbed environment, rlimits, a uid of its own,
and (as root) its own mount, network and PID namespaces and a root file system of its own.

Two halves. `kernelspec()` here (grader side) writes the kernel.json that starts a COPY of
`grader/capture/kernel/launcher.py` (in the capture's root-only spec folder, so that no command line
names the grader's checkout); its `main()` is the launcher (`python -I launcher.py ... -- python -m
ipykernel_launcher -f CONN`): it restarts itself with an empty environment, closes every inherited
file descriptor above 2, applies the limits, isolates, drops privileges and starts the kernel. The
launcher imports only the standard library, because it runs before the privileges are dropped.

As root, with namespaces (a mount plan in the root-only `spec/.../mounts.json`), three processes:
  launcher (grader's PID namespace, the process jupyter_client watches)
   └─ init (PID 1 of a new PID namespace, root, the grader's code only)
       └─ kernel (uid of its own, its own session) and everything the student starts
The launcher unshares mount, network and PID namespaces; init builds a new root on an empty tmpfs:
the system folders (/usr, /etc, /lib*, /bin, /sbin, /dev, /sys), the Python installation and this
capture's own folder bound in, a /proc of this namespace, private tmpfs mounts for the world-writable
folders (/tmp, /var/tmp, /dev/shm, /run/lock), and the work folder as a tmpfs limited in size and
inodes (Limits.disk_mb, Limits.inodes). It pivots into that root and detaches the old one, so the
hand-ins, the output, the cache, /root, /home, /srv and the grader's checkout are not in the
kernel's world at all, wherever they are, and no mount names them (folders created above a kept one
are 0711: passable, not listable). Then it starts the kernel and reaps orphans. When the kernel
exits, or the launcher dies (PR_SET_PDEATHSIG), init exits and the Linux kernel kills every process
left in the namespace: double-forked daemons die with it. SIGINT (jupyter's interrupt) and SIGTERM
are passed on to the kernel by init, which is why the kernel gets a session of its own.

What it stops:
- the grader's environment (secrets, tokens, PATH tricks): the kernel gets a fresh, minimal env;
  HOME is the work folder, KERAS_HOME holds only the four Fashion-MNIST files; the launcher and
  init keep none of the grader's variables either (/proc/1/environ);
- file descriptors of the grader's process (other hand-ins, the gradebook): closed before exec;
- reading /root, other hand-ins, the grader's output, cache and checkout, other kernels' workspaces:
  absent from the kernel's root (and another uid);
- seeing or signalling other kernels (PID namespace, and a different uid: /proc of another uid's
  process is not readable, kill() is refused);
- the network (empty network namespace; the client talks over unix sockets, transport "ipc");
- files left outside the workspace (private tmpfs over every world-writable folder);
- runaway resources: RLIMIT_DATA (memory, which TensorFlow tolerates where RLIMIT_AS does not),
  RLIMIT_FSIZE (one huge file), RLIMIT_NPROC (fork bombs; per uid, so one kernel's bomb does not
  starve another), RLIMIT_CORE=0, the work folder's size and inode quota (ENOSPC, reported in
  Spanish as the limit "disk"). Time and RSS are watched from the grader (runner.py).

What it does not stop: reading world-readable system files and the Python installation (whose path
is visible, and may lie inside the checkout); in-memory tampering with the probe (its output is
validated, never trusted, and fits it did not see are found by static analysis). Steps that are not
available (not root, no namespaces) are skipped and reported in `messages`.
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
