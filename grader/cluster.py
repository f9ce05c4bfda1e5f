"""`grader grade --cluster SPEC`: one Dask task per hand-in, on this machine, lab PCs or SLURM.

The client (the instructor's process) finds the hand-ins and checks the gradebook as a local batch
does (grader.batch), then hands the ones to grade to `ClusterDispatch`: each becomes one task that
receives the hand-in's bytes and the options and returns the result JSON and the report files as
bytes (grader.remote). The client writes those under OUT and stores the row: the gradebook keeps
one writer. Dask's own retry is turned off (allowed-failures 0) so that the client counts attempts
itself: a hand-in whose worker died is sent again once, and one that kills a second worker becomes an
error result. Dask is imported only here and only when a cluster is asked for (extra `grader[cluster]`).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from grader.batch import BatchSummary, error_result
from grader.codec import from_data
from grader.errors import GraderError
from grader.gradebook import Gradebook
from grader.load import Submission
from grader.options import GradeOptions
from grader.remote import HandinTooLarge, grade_handin, make_job
from grader.resources import default_rubric
from grader.results import GradeResult

SPEC_FORMS = "local:N (N worker processes here), tcp://HOST:PORT (a running Dask scheduler) or slurm:N (N SLURM jobs)"
CONNECT_TIMEOUT_S = 10.0
MAX_WORKER_DEATHS = 2  # a hand-in whose grading killed this many workers is not sent again
CRASH_MESSAGE = "El corrector falló con esta entrega; el profesor la revisará a mano."
_SPEC_RE = re.compile(r"^(?:(local|slurm):([1-9]\d{0,3})|(tcp://[^\s/:]+:\d{1,5}))$")


@dataclass(frozen=True)
class SlurmOptions:
    """One SLURM job = one single-threaded Dask worker; grading uses a kernel and TensorFlow beside it."""

    cores: int = 2
    memory: str = "8GB"  # the student kernel alone may take 6 GB (Limits.memory_mb)
    walltime: str = "04:00:00"


@dataclass(frozen=True)
class ClusterSpec:
    kind: str  # "local" | "tcp" | "slurm"
    workers: int = 0  # local / slurm
    address: str = ""  # tcp
    slurm: SlurmOptions = field(default_factory=SlurmOptions)


def parse_spec(text: str) -> ClusterSpec:
    """`local:N`, `tcp://HOST:PORT` or `slurm:N`; ValueError naming the accepted forms otherwise."""
    m = _SPEC_RE.match(text.strip())
    if m is None:
        raise ValueError(f"cannot read cluster {text!r}: expected {SPEC_FORMS}")
    if m.group(3):
        return ClusterSpec("tcp", address=m.group(3))
    return ClusterSpec(m.group(1), workers=int(m.group(2)))


@contextmanager
def connect(spec: ClusterSpec, *, timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator:
    """A Dask `Client` on the cluster SPEC describes, closed (with a cluster it started) on exit."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise GraderError("--cluster needs Dask: install the extra with pip install 'grader[cluster]'") from exc
    cluster = None
    # allowed-failures 0: the client counts attempts (a scheduler started here reads it at start).
    # A hand-in's ZIP travels in its task: notebooks with images are megabytes, which is expected.
    settings = {"distributed.scheduler.allowed-failures": 0,
                "distributed.admin.large-graph-warning-threshold": "512MB"}
    with dask.config.set(settings):
        if spec.kind == "local":
            # memory_limit=0: the sandbox limits the student's memory; a nanny must not kill a worker
            # for the memory of the grading subprocess. The scheduler's HTTP port moves aside quietly
            # when another cluster on this machine holds it; the workers' heartbeat errors while the
            # cluster closes are noise (a failure while grading becomes that hand-in's error result).
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Port .* is already in use")
                cluster = LocalCluster(n_workers=spec.workers, threads_per_worker=1, processes=True,
                                       memory_limit=0, dashboard_address=None, silence_logs=logging.CRITICAL)
        elif spec.kind == "slurm":
            cluster = _slurm_cluster(spec)
        try:
            client = Client(cluster if cluster is not None else spec.address, timeout=timeout_s)
        except (OSError, TimeoutError) as exc:
            if cluster is not None:
                cluster.close()
            raise GraderError(f"no Dask scheduler answered at {spec.address or spec.kind} within "
                              f"{timeout_s:g} s ({type(exc).__name__})") from exc
        try:
            if spec.kind == "tcp":
                _no_scheduler_retries(client)
            yield client
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def _slurm_cluster(spec: ClusterSpec):
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:
        raise GraderError("slurm:N needs dask-jobqueue: install the extra with pip install 'grader[cluster]'") from exc
    if shutil.which("sbatch") is None:
        raise GraderError("slurm:N: sbatch is not on this machine's PATH; run grader on a SLURM login node")
    s = spec.slurm
    cluster = SLURMCluster(cores=1, processes=1, job_cpu=s.cores, memory=s.memory, walltime=s.walltime)
    cluster.scale(jobs=spec.workers)
    return cluster


def _no_scheduler_retries(client) -> None:
    """A scheduler started by the instructor re-runs a task after a worker death on its own (3 times by
    default); the client counts attempts itself, so that is turned off. A nested function travels by
    value: the scheduler's machine needs no grader."""

    def no_retries(dask_scheduler) -> None:
        dask_scheduler.allowed_failures = 0

    try:
        client.run_on_scheduler(no_retries)
    except Exception as exc:  # an old or locked-down scheduler: grading still works, attempts may be more
        _say(f"cluster: could not turn off the scheduler's own retries ({type(exc).__name__})")


@dataclass
class _Job:
    sub: Submission
    data: dict
    attempts: int = 0  # tasks sent for this hand-in
    deaths: int = 0  # workers that died while grading it
    allowed: list[str] | None = None  # the workers its task may run on (None: any)


class ClusterDispatch:
    """The `dispatch` hook of grader.batch.grade_batch: grade `todo` on a Dask cluster, store each row."""

    def __init__(self, spec: ClusterSpec, opts: GradeOptions, *, progress: bool = True,
                 timeout_s: float = CONNECT_TIMEOUT_S, task: Callable[[dict], dict] = grade_handin):
        self.spec, self.progress, self.timeout_s = spec, progress, timeout_s
        self.task = task  # what each Dask task runs (grader.remote.grade_handin; tests wrap it)
        # On this machine the workers can share the client's cache; elsewhere each has its own unless
        # --cache-dir names a shared folder.
        cache = opts.retrain_cache if spec.kind == "local" else opts.cache_dir
        self.opts = replace(opts, cache_dir=cache)

    def __call__(self, todo: list[Submission], book: Gradebook, rubric_digest: str, summary: BatchSummary) -> None:
        if not todo:
            return
        with connect(self.spec, timeout_s=self.timeout_s) as client:
            _Run(client, self.opts, book, rubric_digest, summary, self.progress, self.task).run(todo)


class _Run:
    """One batch on a cluster. The client keeps at most one task per live worker in flight, so a worker
    never holds a queued hand-in: a worker's death then costs an attempt only to the hand-in it was
    grading, and a worker that joins gets work at once."""

    def __init__(self, client, opts: GradeOptions, book: Gradebook, rubric_digest: str,
                 summary: BatchSummary, progress: bool, task: Callable[[dict], dict]):
        self.client, self.opts, self.book, self.summary = client, opts, book, summary
        self.task = task
        self.rubric_digest = rubric_digest
        self.rubric_text = Path(opts.rubric_path or default_rubric()).read_text(encoding="utf-8")
        self.progress = progress
        self.waiting: list[_Job] = []  # packed, not sent yet (retries go first)
        self.pending: dict = {}  # future -> _Job
        self.unfit: set[str] = set()  # workers that answered they cannot grade (no Fashion-MNIST)
        self.workers: set[str] | None = None  # as last seen; None before the first look
        self.stored: set[str] = set()
        self.bar = None

    def run(self, todo: list[Submission]) -> None:
        from distributed import wait

        self.bar = tqdm(total=len(todo), unit="entrega", disable=not self.progress, dynamic_ncols=True)
        try:
            for sub in todo:  # all packed before the first is sent: the hand-ins' files may go after that
                try:
                    self.waiting.append(_Job(sub, make_job(sub, self.opts, self.rubric_text)))
                except (HandinTooLarge, OSError) as exc:
                    self._store(sub, error_result(sub, f"not sent to a worker: {exc}"), ok=False)
            while self.waiting or self.pending:
                self._watch_workers()
                self._fill()
                try:
                    done, _ = wait(list(self.pending), timeout=1.0, return_when="FIRST_COMPLETED")
                except TimeoutError:  # nothing finished this second: look at the workers, wait again
                    done = set()
                for fut in done:
                    self._finish(fut, self.pending.pop(fut))
        except BaseException:
            # Ctrl-C or a stop: what was stored stays and a re-run resumes. Tasks already running on
            # other machines finish there and are dropped; a local cluster is closed with its workers.
            self.client.cancel(list(self.pending), force=True)
            raise
        finally:
            self.bar.close()

    def _fill(self) -> None:
        usable = self.workers - self.unfit
        if self.unfit and self.workers and not usable:
            raise GraderError("no worker can grade: " + "; ".join(sorted(self.unfit)))
        while self.waiting and len(self.pending) < max(1, len(usable)):
            job = self.waiting.pop(0)
            job.attempts += 1
            job.allowed = sorted(usable) if self.unfit and usable else None
            fut = self.client.submit(self.task, job.data, key=f"grade-{job.sub.student}-{uuid.uuid4().hex[:8]}",
                                     pure=False, workers=job.allowed, allow_other_workers=False)
            self.pending[fut] = job

    def _finish(self, fut, job: _Job) -> None:
        from distributed import KilledWorker

        sub = job.sub
        if fut.status == "finished":
            answer = fut.result()
            if answer["status"] == "unfit":
                self.unfit.add(answer["worker"])
                _say(f"cluster: {answer['message']}; hand-in {sub.student} goes to another worker")
                job.attempts -= 1  # nothing was graded
                self.waiting.insert(0, job)
                return
            self._accept(job, answer)
            return
        exc = fut.exception() if fut.status == "error" else None
        if isinstance(exc, KilledWorker):
            job.deaths += 1
            if job.deaths < MAX_WORKER_DEATHS:
                _say(f"cluster: a worker died while grading {sub.student}; sending it again")
                self.waiting.insert(0, job)
                return
            result = error_result(sub, f"{job.deaths} workers died while grading this hand-in ({exc})")
            result.errors[0]["message"] = CRASH_MESSAGE
        else:
            result = error_result(sub, f"the Dask task ended with {fut.status}: {type(exc).__name__}: {exc}")
        result.meta["cluster"] = {"attempts": job.attempts}
        self._store(sub, result, ok=False)

    def _accept(self, job: _Job, answer: dict) -> None:
        sub = job.sub
        result = from_data(GradeResult, json.loads(answer["result"]))
        ok = answer["status"] == "graded"
        if result.meta.get("submission_digest") != sub.digest:
            result = error_result(sub, f"worker {answer['worker']} graded different content "
                                       f"(digest {result.meta.get('submission_digest')!r})")
            ok = False
        else:
            self._write_files(answer["files"])
        result.meta["cluster"] = {"worker": answer["worker"], "attempts": job.attempts}
        self._store(sub, result, ok=ok)

    def _write_files(self, files: dict[str, bytes]) -> None:
        out = self.opts.out_dir
        for rel, blob in files.items():
            parts = PurePosixPath(rel).parts
            if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
                continue  # the worker only sends paths under its OUT; anything else is dropped
            target = out.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)

    def _store(self, sub: Submission, result: GradeResult, *, ok: bool) -> None:
        if sub.student in self.stored:  # a late duplicate answer: the first one stays
            return
        self.stored.add(sub.student)
        self.book.store(result, status="graded" if ok else "error", rubric_digest=self.rubric_digest,
                        budget=self.opts.budget.name)
        (self.summary.graded if ok else self.summary.failed).append(sub.student)
        self.bar.set_postfix_str(f"{sub.student}: {result.score:g}/{result.max_score:g}" if ok else
                                 f"{sub.student}: error")
        self.bar.update()

    def _live_workers(self) -> set[str]:
        return set(self.client.scheduler_info(n_workers=-1)["workers"])

    def _watch_workers(self) -> None:
        now = self._live_workers()
        if self.workers is not None:
            for addr in sorted(now - self.workers):
                _say(f"cluster: worker joined {addr} ({len(now)} live)")
            for addr in sorted(self.workers - now):
                _say(f"cluster: worker lost {addr} ({len(now)} live)")
        if self.workers is None or len(now) != len(self.workers):
            self.bar.set_description_str(f"{len(now)} trabajadores")
        self.workers = now
        for fut, job in list(self.pending.items()):
            if job.allowed is not None and not now.intersection(job.allowed):  # it could never start
                fut.cancel()
                del self.pending[fut]
                job.attempts -= 1
                self.waiting.insert(0, job)


def _say(line: str) -> None:
    """One line for the instructor, above the progress bar (stderr, like the bar)."""
    tqdm.write(line, file=sys.stderr)


def wait_for_workers(client, n: int, timeout_s: float) -> None:
    """Block until `n` workers are connected (tests and the benchmark start timing after this)."""
    deadline = time.monotonic() + timeout_s
    while len(client.scheduler_info(n_workers=-1)["workers"]) < n:
        if time.monotonic() > deadline:
            raise GraderError(f"fewer than {n} Dask workers after {timeout_s:g} s")
        time.sleep(0.2)
