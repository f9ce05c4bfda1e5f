"""capture_submission(): run a hand-in in a fresh, limited kernel with the probe and build its Trace.

The recipe: lay out a workspace (workspace.py) -> start the sandboxed kernel (sandbox.py) ->
hidden cell `grader_probe.install(...)` -> for each student cell: hidden `at_cell(i)`, then the
cell, under the per-cell and total deadlines and the memory watchdog -> read the probe's events
back on the trusted side (events.py) -> trace.json + validated arrays/.

A failing cell is data (CellError) and the next cell runs. A cell past its time limit is
interrupted (status "timeout") and the run goes on when the kernel answers again; past the total
limit, or when the kernel is dead or killed for memory, the run stops and keeps what was recorded.
`grader check` also passes its own bound (CheckBound): student cells still running when the whole
check's time is up are stopped (status "check_time"), a cut the rules never count as the student's fault.
"""

from __future__ import annotations

import math
import re
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import nbformat
import psutil
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from grader.capture import events
from grader.capture.sandbox import KERNEL_NAME
from grader.capture.trace import CaptureTimings, CellError, CellTiming, HiddenFailure, Trace, student_text
from grader.capture.workspace import Workspace, create_workspace, install_kernelspec
from grader.codec import to_data
from grader.load import Submission
from grader.options import Limits

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_LINE = re.compile(r"(?:Cell In\s*\[\d*\]|Input In \[\d*\]|<ipython-input-[^>]*>), line (\d+)")
_TRACEBACK_CHARS = 3000
_TIMEOUT = "GraderCellTimeout"
_DISK_FULL = re.compile(r"\[Errno (28|27|122)\]")  # ENOSPC, EFBIG, EDQUOT


class CheckBound(NamedTuple):
    """The quick check's bound on the whole check: student cells stop at `at` (time.monotonic()).
    Kernel start and the probe are the grader's own steps and are not cut by it."""

    at: float
    seconds: float  # the bound as the student set it (`grader check --time-limit`), for the messages


def capture_submission(sub: Submission, out_dir: Path, *, limits: Limits = Limits(),
                       data_dir: Path | None = None, private: Sequence[Path] = (),
                       check: CheckBound | None = None) -> Trace:
    """Execute every code cell of `sub` in a fresh sandboxed kernel; write out_dir/trace.json and
    out_dir/arrays/<digest>.npy; return the Trace. `private`: folders hidden from the kernel on
    top of the usual ones (workspace.create_workspace). Student problems never raise: they end up in
    Trace.status, Trace.errors and Trace.messages."""
    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trace = Trace(student=sub.student, limits=to_data(limits))
    if sub.load_error is not None or not any(c.source.strip() for c in sub.code_cells):
        trace.status = "not_run"
        trace.messages.append("nothing to run: " + (sub.load_error.code if sub.load_error else "no code cells"))
    else:
        ws = create_workspace(sub, data_dir, out_dir, private=private)
        try:
            trace.messages += ws.messages
            run = _Run(sub, ws, limits, trace, check)
            run.execute()
            events.assemble(trace, sub, ws.events, out_dir, limits.array_bytes)
            nbformat.write(run.nb, out_dir / "executed.ipynb")
        finally:
            ws.cleanup()
    trace.duration_s = round(time.monotonic() - started, 3)
    trace.save(out_dir / "trace.json")
    return trace


class _Run:
    """One kernel, driven cell by cell through nbclient."""

    def __init__(self, sub: Submission, ws: Workspace, limits: Limits, trace: Trace, check: CheckBound | None = None):
        self.sub, self.ws, self.limits, self.trace, self.check = sub, ws, limits, trace, check
        self.nb = nbformat.v4.new_notebook()
        for cell in sub.cells:
            maker = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell}
            self.nb.cells.append(maker.get(cell.cell_type, nbformat.v4.new_raw_cell)(cell.source))
        # nbclient stores every executed cell back into nb.cells[index]: hidden cells use a scratch
        # slot at the end, removed once the run is over.
        self.scratch = len(self.nb.cells)
        self.nb.cells.append(nbformat.v4.new_code_cell(""))
        self.output_left = limits.output_bytes
        self.output_dropped = 0
        self.replies: dict[int, dict] = {}
        self.timings: list[tuple[int, float]] = []
        self.kernel_start_s = 0.0
        self.current: int | None = None  # the student cell running now
        self.probe_install_s = 0.0

    def execute(self) -> None:
        fsize_mb = max(256, min(self.limits.array_bytes, 4 * 2**30) // 2**20 + 64)
        install_kernelspec(self.ws, self.limits, fsize_mb)
        km = AsyncKernelManager(kernel_name=KERNEL_NAME,
                                kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(self.ws.spec_root)]),
                                connection_file=str(self.ws.runtime / "kernel.json"))
        if self.ws.isolate_net:  # no network inside: unix sockets instead of TCP
            km.transport, km.ip = "ipc", str(self.ws.runtime / "ipc")
        # On a timeout nbclient interrupts the kernel and answers with this error reply; it also
        # waits for the interrupted cell's last output, so the next cell's outputs are not lost.
        client = NotebookClient(self.nb, km=km, kernel_name=KERNEL_NAME, allow_errors=True,
                                startup_timeout=120, iopub_timeout=3, interrupt_on_timeout=True,
                                error_on_timeout={"ename": _TIMEOUT, "evalue": "", "traceback": []},
                                record_timing=False)
        original_output = client.output
        client.output = lambda outs, msg, display_id, index: self._output(original_output, outs, msg,
                                                                          display_id, index)
        client.on_cell_error = self._on_error
        self.deadline = time.monotonic() + self.limits.total_timeout_s
        self.trace.cells_started = []
        watchdog = _MemoryWatchdog(self.limits.memory_mb)
        t0 = time.monotonic()
        try:
            client.start_new_kernel(cwd=str(self.ws.work))
            client.start_new_kernel_client()
            self.kernel_start_s = time.monotonic() - t0
            watchdog.start(km)
            t0 = time.monotonic()
            self._hidden(client, "import grader_probe as _grader_probe\n"
                         f"_grader_probe.install({str(self.ws.events)!r}, {self.limits.array_bytes})",
                         timeout=min(120, self.limits.total_timeout_s), step="install")
            self.probe_install_s = time.monotonic() - t0
            for nb_index, cell in enumerate(self.nb.cells[:self.scratch]):
                if cell.cell_type == "code" and cell.source.strip() and not self._run_cell(client, nb_index, cell):
                    break
            else:  # the last cell may have replaced Keras' methods too: the same check as at_cell
                self.current = None
                self._hidden(client, "__import__('grader_probe').at_end()", timeout=30, step="at_end")
        except DeadKernelError:
            self._dead(watchdog, self.current)
        except RuntimeError as exc:  # kernel failed to start (e.g. a student file shadows numpy)
            self.trace.status = "kernel_died"
            self.trace.messages.append(f"kernel did not start: {exc}; log: {self._log_tail()}")
        except Exception as exc:  # the kernel is hostile: odd messages must not crash the grader
            self.trace.status = "kernel_died"
            self.trace.messages.append(f"capture aborted: {type(exc).__name__}: {str(exc)[:300]}")
        finally:
            watchdog.stop()
            _shutdown(client, km, self.ws.root)
            del self.nb.cells[self.scratch:]
        if watchdog.fired and self.trace.status != "memory":
            self._dead(watchdog, self.current)
        if self.output_dropped:
            self.trace.messages.append(f"output cap: {self.output_dropped} bytes of cell output dropped "
                                       f"(limit {self.limits.output_bytes})")
        self.trace.timings = CaptureTimings(
            kernel_start_s=round(self.kernel_start_s, 2), probe_install_s=round(self.probe_install_s, 2),
            cells=[CellTiming(cell=i, seconds=round(t, 2)) for i, t in self.timings])

    def _run_cell(self, client: NotebookClient, index: int, cell: Any) -> bool:
        """Run one student cell; False when the run must stop."""
        self._hidden(client, f"__import__('grader_probe').at_cell({index})", timeout=30, step="at_cell",
                     cell=index)
        now = time.monotonic()
        remaining = self.deadline - now
        if remaining <= 0:
            self._timed_out(index, self.limits.total_timeout_s, total=True)
            return False
        check_left = math.inf if self.check is None else self.check.at - now
        if check_left <= 0:
            self._check_stop(index)
            return False
        budget = min(self.limits.cell_timeout_s, remaining, check_left)
        client.timeout = max(1, math.ceil(budget))
        self.current = index
        self.trace.cells_started.append(index)
        t = time.monotonic()
        try:
            client.execute_cell(cell, index)
        finally:
            self.timings.append((index, time.monotonic() - t))
        reply = self.replies.pop(index, None)
        if reply is not None and reply.get("ename") == _TIMEOUT:
            if check_left < min(self.limits.cell_timeout_s, remaining):  # the check's bound, not a limit
                self._check_stop(index)
                return False
            total = budget < self.limits.cell_timeout_s
            self._timed_out(index, self.limits.total_timeout_s if total else budget, total=total)
            # Go on only when the interrupted kernel answers again (a loop in C code may not).
            return not total and self._hidden(client, "pass", timeout=5, step="ping") is None
        if reply is not None:
            self.trace.errors.append(_cell_error(index, reply, self.limits))
        return True

    def _hidden(self, client: NotebookClient, source: str, timeout: float, step: str,
                cell: int | None = None) -> dict | None:
        """Run grader code that is not a student cell; returns the error reply, if any (also kept
        in trace.hidden_failures for the rules that must know where the probe could not look)."""
        client.timeout = max(1, math.ceil(timeout))
        client.execute_cell(nbformat.v4.new_code_cell(source), self.scratch, store_history=False)
        reply = self.replies.pop(self.scratch, None)
        if reply is not None:
            ename = str(reply.get("ename", "Error"))[:200]
            self.trace.hidden_failures.append(HiddenFailure(step=step, cell=cell, ename=ename))
            self.trace.messages.append(f"hidden cell {source[:40]!r} failed: {ename}")
        return reply

    def _timed_out(self, index: int, seconds: float, *, total: bool) -> None:
        self.trace.status = "timeout"
        what = "total time limit" if total else "cell time limit"
        self.trace.errors.append(CellError(cell=index, ename="Timeout", evalue=f"{what} of {seconds:.0f} s exceeded",
                                           limit="total_timeout" if total else "cell_timeout",
                                           limit_value=float(seconds)))

    def _check_stop(self, index: int) -> None:
        """The quick check's time is up at this cell: it and the cells after it are not run (or not to the end)."""
        self.trace.status = "check_time"
        seconds = self.check.seconds if self.check is not None else 0.0
        self.trace.errors.append(CellError(cell=index, ename="CheckTimeLimit",
                                           evalue=f"the quick check's time limit of {seconds:.0f} s was reached",
                                           limit="check_time", limit_value=float(seconds)))

    def _dead(self, watchdog: _MemoryWatchdog, index: int | None) -> None:
        if any(e.ename in ("KernelDied", "MemoryLimit") for e in self.trace.errors):
            return
        if watchdog.fired:
            self.trace.status = "memory"
            self.trace.errors.append(CellError(cell=index, ename="MemoryLimit", evalue=(
                f"kernel killed: memory use {watchdog.peak_mb} MB over the limit of {self.limits.memory_mb} MB"),
                limit="memory", limit_value=float(self.limits.memory_mb)))
        else:
            self.trace.status = "kernel_died"
            self.trace.errors.append(CellError(cell=index, ename="KernelDied", evalue="the kernel died",
                                               traceback=self._log_tail(), limit="kernel_died"))

    def _on_error(self, cell: Any, cell_index: int, execute_reply: dict) -> None:
        self.replies[cell_index] = execute_reply.get("content", {})

    def _output(self, original: Any, outs: list, msg: dict, display_id: Any, index: int) -> Any:
        size = _content_size(msg.get("content"))
        if msg.get("msg_type") != "error" and size > self.output_left:
            if not self.output_dropped:
                outs.append(nbformat.v4.new_output("stream", name="stderr",
                                                   text="[grader: output limit reached, rest dropped]\n"))
            self.output_dropped += size
            return None
        self.output_left -= size
        return original(outs, msg, display_id, index)

    def _log_tail(self) -> str:
        try:
            with open(self.ws.log, "rb") as fh:
                fh.seek(max(0, fh.seek(0, 2) - 1500))
                return _ANSI.sub("", fh.read().decode("utf-8", "replace"))
        except OSError:
            return ""


class _MemoryWatchdog:
    """Kills the kernel (and its children) when their total RSS passes the limit."""

    def __init__(self, memory_mb: int, period_s: float = 0.2):
        self.limit = memory_mb * 2**20
        self.period_s = period_s
        self.fired = False
        self.peak_mb = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, km: AsyncKernelManager) -> None:
        pid = getattr(km.provisioner, "pid", None) or km.provisioner.process.pid
        self._thread = threading.Thread(target=self._watch, args=(pid,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _watch(self, pid: int) -> None:
        try:
            kernel = psutil.Process(pid)
        except psutil.Error:
            return
        while not self._stop.wait(self.period_s):
            try:
                procs = [kernel, *kernel.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in procs)
            except psutil.Error:
                return
            self.peak_mb = max(self.peak_mb, rss // 2**20)
            if rss > self.limit:
                self.fired = True
                _kill(procs)
                return


def _kill(procs: list[psutil.Process]) -> None:
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass


def _shutdown(client: NotebookClient, km: AsyncKernelManager, workspace: Path) -> None:
    """Stop the kernel and whatever it started: its children, and daemons that left the process
    tree but still have their cwd in the workspace. With namespaces, init's exit kills the whole
    PID namespace, and Workspace.cleanup() kills whatever still runs as the kernel's uid; this
    sweep is what is left when the grader is not root."""
    procs: list[psutil.Process] = []
    try:
        proc = km.provisioner.process if km.provisioner else None
        if proc is not None:
            kernel = psutil.Process(proc.pid)
            procs = [kernel, *kernel.children(recursive=True)]
    except (psutil.Error, AttributeError):
        pass
    for other in psutil.process_iter():
        try:
            if other.cwd().startswith(str(workspace) + "/"):
                procs.append(other)
        except psutil.Error:
            pass
    try:
        if client.kc is not None:
            client.kc.stop_channels()
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    except Exception:  # a kernel that is already gone is fine
        pass
    _kill(procs)
    try:
        run_sync(km.cleanup_resources)()
    except Exception:
        pass


def _content_size(content: Any, depth: int = 0) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, dict) and depth < 4:
        return sum(_content_size(v, depth + 1) for v in content.values())
    if isinstance(content, list) and depth < 4:
        return sum(_content_size(v, depth + 1) for v in content)
    return 8


def _cell_error(index: int, reply: dict, limits: Limits) -> CellError:
    lines = [_ANSI.sub("", str(t)) for t in reply.get("traceback") or []]
    text = "\n".join(lines)
    match = _CELL_LINE.search(text) or re.search(r"line (\d+)", str(reply.get("evalue", "")))
    error = CellError(cell=index, ename=str(reply.get("ename", "Error"))[:200],
                      evalue=student_text(str(reply.get("evalue", ""))),
                      line=int(match.group(1)) if match else None, traceback=text[-_TRACEBACK_CHARS:])
    if _DISK_FULL.match(error.evalue):  # the work folder's tmpfs (size or inodes) or RLIMIT_FSIZE
        error.limit, error.limit_value = "disk", float(limits.disk_mb)
    return error
