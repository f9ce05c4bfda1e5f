"""The trusted retrain in a child process with hard limits: `RetrainChild` / `retrain_in_child()` on the
grader's side, `python -m grader.retrain.child RUNS_FILE MEMORY_MB` (the job on stdin) on the other.

The student chooses what the grader trains (a full-batch fit, one epoch of hours), and nothing inside
one TensorFlow call can be interrupted. So the retrain runs in a child process with its own memory
limit (RLIMIT_DATA, Budget.memory_mb), which the parent kills once the time budget is spent. The child
sends each run back the moment it is finished, as one JSON line written with grader.codec (never a
pickle); the runs it did not finish are reported with status "budget" (killed at the time budget) or
"error" (the child died, e.g. out of memory), like the Budget does for runs it never started.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from grader.capture.trace import Trace
from grader.codec import from_data, to_data
from grader.options import ENV_RETRAIN_PARENT_PID, Budget
from grader.results import RunResult
from grader.retrain.plan import plan_runs
from grader.retrain.progress import RetrainProgress

STARTUP_S = 180  # importing TensorFlow and loading the data set, before the budget's clock starts
GRACE_S = 5  # past the budget: the child's own deadline stops it between epochs; this is the hard stop
_POLL_S = 0.2


def retrain_in_child(trace_path: Path, arrays_dir: Path, work: Path, *, final_model_id: int | None,
                     budget: Budget, cache_dir: Path | None, seed: int,
                     progress: RetrainProgress | None = None, child: RetrainChild | None = None) -> list[RunResult]:
    """Retrain the trace saved at `trace_path` in a child process; `work` gets retrain-job.json,
    retrain-runs.jsonl and retrain.log. One RunResult per planned run, finished or not. `progress`
    (grader check's bars) is driven from the child's progress lines in the same stream. `child`: one
    started earlier (RetrainChild, warmed up while the notebook ran); without it one is started here."""
    trace = Trace.load(trace_path)
    planned, _ = plan_runs(trace, final_model_id, seed)
    if not planned:
        return []
    job = {"trace": str(trace_path), "arrays": str(arrays_dir), "final_model_id": final_model_id,
           "budget": to_data(budget), "cache_dir": None if cache_dir is None else str(cache_dir), "seed": seed,
           "progress": progress is not None}
    (work / "retrain-job.json").write_text(json.dumps(job), encoding="utf-8")  # for whoever debugs a run
    own = child is None
    if child is None:
        child = RetrainChild(work, budget.memory_mb)
    try:
        killed, seconds = child.run(job, budget.time_budget_s, _Relay(progress) if progress else None)
    finally:
        if own:
            child.close()
    done = {run.run_id: run for run in _read_runs(child.runs_file)}
    for run in planned:
        if run.run_id in done:
            continue
        if killed:
            run.status, run.cut = "budget", "time"
            run.reason = f"retrain time budget of {budget.time_budget_s:.0f} s used up (stopped after {seconds:.0f} s)"
        else:
            run.status = "error"
            run.reason = (f"the retrain process ended with code {child.proc.returncode} before this run finished "
                          f"(memory limit {budget.memory_mb} MB)")
    return [done.get(run.run_id, run) for run in planned]


class RetrainChild:
    """The retrain process, started before the student's kernel: it applies its memory limit, imports
    TensorFlow and loads the data set while the notebook runs (seconds a hand-in no longer waits for),
    then waits for its one job on stdin. `run()` hands it the job; `close()` (or leaving the `with`
    block) stops it if it is still there, e.g. when the hand-in had nothing to retrain."""

    def __init__(self, work: Path, memory_mb: int):
        self.runs_file = work / "retrain-runs.jsonl"
        self.runs_file.unlink(missing_ok=True)
        self.started = time.monotonic()
        self._log = (work / "retrain.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "grader.retrain.child", str(self.runs_file), str(int(memory_mb))],
            stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT,
            env=dict(os.environ, **{ENV_RETRAIN_PARENT_PID: str(os.getpid())}))

    def run(self, job: dict, budget_s: float, relay: _Relay | None = None) -> tuple[bool, float]:
        """Send the job and wait for the child: (killed at the time budget, seconds since it was ready)."""
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode("utf-8"))
            self.proc.stdin.close()
        except OSError:  # the child is already gone (its start-up failed): reported as runs not finished
            pass
        return _wait(self.proc, self.runs_file, budget_s, relay, started=self.started)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        self._log.close()

    def __enter__(self) -> RetrainChild:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Relay:
    """Replays the child's progress lines on the parent's bars (the child has no terminal of its own)."""

    def __init__(self, progress: RetrainProgress):
        self.progress, self.read, self.ticks, self.runs = progress, 0, {}, {}

    def poll(self, runs_file: Path) -> None:
        try:
            with runs_file.open(encoding="utf-8") as fh:
                fh.seek(self.read)
                chunk = fh.read()
        except OSError:
            return
        complete = chunk[:chunk.rfind("\n") + 1]  # a line still being written waits for the next poll
        self.read += len(complete.encode("utf-8"))
        for line in complete.splitlines():
            try:
                message = json.loads(line).get("progress")
            except (ValueError, AttributeError):
                continue
            if isinstance(message, dict):
                self._apply(message)

    def _apply(self, m: dict) -> None:
        run_id = str(m.get("run"))
        if m.get("event") == "start":
            run = RunResult(run_id=run_id, model_id=int(m.get("model_id", 0)), fit_indices=[])
            self.runs[run_id] = run
            self.ticks[run_id] = self.progress.start(run, int(m.get("epochs", 1)))
        elif m.get("event") == "tick" and run_id in self.ticks:
            self.ticks[run_id](float(m.get("done", 0)))
        elif m.get("event") == "finish" and run_id in self.runs:
            self.progress.finish(self.runs.pop(run_id))
            self.ticks.pop(run_id, None)


class _SendProgress:
    """The child's side of the relay: start/tick/finish as progress lines (ticks at most 4 a second)."""

    def __init__(self, send: Callable[[dict], None]):
        self.send, self.last = send, {}  # per run: fused models tick together, each has its own bar

    def name_models(self, names: dict[int, str]) -> None:  # the parent names them
        pass

    def start(self, run: RunResult, epochs: int) -> Callable[[float], None]:
        self.send({"progress": {"event": "start", "run": run.run_id, "model_id": run.model_id, "epochs": epochs}})

        def tick(done: float) -> None:
            now = time.monotonic()
            if now - self.last.get(run.run_id, 0.0) >= 0.25:
                self.last[run.run_id] = now
                self.send({"progress": {"event": "tick", "run": run.run_id, "done": done}})
        return tick

    def finish(self, run: RunResult) -> None:
        done = len(run.history.get("loss", []))
        if done:  # where the model really ended (the last throttled tick may be behind)
            self.send({"progress": {"event": "tick", "run": run.run_id, "done": done}})
        self.send({"progress": {"event": "finish", "run": run.run_id}})


def _wait(proc: subprocess.Popen, runs_file: Path, budget_s: float, relay: _Relay | None = None, *,
          started: float) -> tuple[bool, float]:
    """Wait for the child; SIGKILL it at the budget, counted from when it is ready to train and has the
    job (a warmed-up child is ready at once), or STARTUP_S after it was `started` if it never gets ready.
    Returns (killed at the budget, seconds since it was ready)."""
    ready_at = None
    while proc.poll() is None:
        if relay is not None:
            relay.poll(runs_file)
        now = time.monotonic()
        if ready_at is None and runs_file.is_file() and runs_file.stat().st_size:
            ready_at = now
        limit = started + STARTUP_S if ready_at is None else ready_at + budget_s + GRACE_S
        if now > limit:
            proc.kill()
            proc.wait()
            return True, now - (ready_at or started)
        time.sleep(_POLL_S)
    if relay is not None:
        relay.poll(runs_file)
    return False, time.monotonic() - (ready_at or started)


def _read_runs(runs_file: Path) -> list[RunResult]:
    runs = []
    try:
        lines = runs_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:  # the last line, cut by the kill
            continue
        if isinstance(data, dict) and isinstance(data.get("run"), dict):
            runs.append(from_data(RunResult, data["run"]))
    return runs


def main(argv: list[str]) -> int:
    """The child (`python -m grader.retrain.child RUNS_FILE MEMORY_MB`): limits, TensorFlow and the data
    set, a "ready" line, then the job read from stdin and one JSON line per finished run. No job (stdin
    closed empty): nothing to retrain, exit."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: dies with the worker, whatever kills it
    if os.getppid() != int(os.environ.get(ENV_RETRAIN_PARENT_PID, os.getppid())):
        return 1
    runs_path, memory = Path(argv[0]), int(argv[1]) * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    from grader.data import load_fashion_mnist, row_index
    from grader.options import quiet_tensorflow
    from grader.retrain.replay import _configure_tensorflow, retrain_trace

    quiet_tensorflow()
    _configure_tensorflow()
    load_fashion_mnist()
    row_index()
    with open(runs_path, "a", encoding="utf-8") as out:
        def send(message: dict) -> None:
            out.write(json.dumps(message, ensure_ascii=False) + "\n")
            out.flush()

        send({"ready": True})
        line = sys.stdin.readline()
        if not line.strip():
            return 0
        job = json.loads(line)
        retrain_trace(Trace.load(Path(job["trace"])), Path(job["arrays"]), final_model_id=job["final_model_id"],
                      budget=from_data(Budget, job["budget"]),
                      cache_dir=None if job["cache_dir"] is None else Path(job["cache_dir"]),
                      seed=job["seed"], on_run=lambda run: send({"run": to_data(run)}),
                      progress=_SendProgress(send) if job.get("progress") else None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
