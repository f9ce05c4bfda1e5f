"""Batch grading: every hand-in of a folder or ZIP, several at a time, resumable.

Each hand-in is graded in its own worker process (`python -m grader.worker`), so a crash, a
TensorFlow abort or a memory blow-up costs that hand-in alone. The parent process is the only writer
of the SQLite gradebook; a row is stored the moment its hand-in finishes, so a batch killed half-way
resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from grader.codec import from_data, to_data
from grader.gradebook import Gradebook
from grader.load import Submission, file_stem, find_submissions
from grader.options import ENV_BATCH_PID, GradeOptions
from grader.results import GradeResult

WORKER_TIMEOUT_S = 3 * 3600


@dataclass
class BatchSummary:
    graded: list[str]
    skipped: list[str]  # already in the gradebook with the same content, rubric and budget
    failed: list[str]  # the grader itself failed on these (their result says why)
    out_dir: Path


def grade_batch(
    path: Path,
    opts: GradeOptions,
    *,
    jobs: int = 1,
    force: bool = False,
    progress: bool = True,
    csv_dialect: str = "en",
    dispatch: Callable[[list[Submission], Gradebook, str, BatchSummary], None] | None = None,
) -> BatchSummary:
    from grader.rules import load_rubric

    rubric = load_rubric(opts.rubric_path)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    extracted = opts.out_dir / "extracted"
    shutil.rmtree(extracted, ignore_errors=True)  # left by a batch that was killed
    try:
        subs = find_submissions(path, workdir=extracted)
        prune_extracted(extracted, subs)
        summary = _grade_all(subs, opts, rubric, jobs=jobs, force=force, progress=progress,
                             csv_dialect=csv_dialect, dispatch=dispatch)
    finally:
        # Hand-ins in a class ZIP are read from here until their worker has loaded them; after
        # that nothing needs the extracted files, and a ZIP that inflates stays there no longer.
        shutil.rmtree(extracted, ignore_errors=True)
    return summary


def prune_extracted(extracted: Path, subs: list[Submission]) -> None:
    """Remove what discovery extracted that no worker will read: a student's own ZIPs (a worker
    extracts them again from the ZIP itself). Only a class ZIP's folder, which holds hand-ins,
    stays until the batch ends -- so a batch killed half-way leaves no more than that."""
    if not extracted.is_dir():
        return
    needed = {sub.path.relative_to(extracted).parts[0] for sub in subs if sub.path.is_relative_to(extracted)}
    for entry in extracted.iterdir():
        if entry.name not in needed:
            shutil.rmtree(entry, ignore_errors=True)


def _grade_all(subs: list[Submission], opts: GradeOptions, rubric, *, jobs: int, force: bool,
               progress: bool, csv_dialect: str,
               dispatch: Callable[[list[Submission], Gradebook, str, BatchSummary], None] | None) -> BatchSummary:
    from grader.resources import default_rubric
    from grader.review.overrides import corrected_results, reconcile, write_class_pages, write_report
    from grader.review.similarity_report import similarity_step

    summary = BatchSummary([], [], [], opts.out_dir)
    overridden: set[str] = set()  # graded now and corrected by the instructor before: re-render with overrides
    with Gradebook(opts.out_dir / "gradebook.sqlite") as book:
        # Overrides re-score with exactly this rubric later, whatever file --rubric names then.
        book.store_rubric(rubric.digest, rubric.path,
                          Path(opts.rubric_path or default_rubric()).read_text(encoding="utf-8"))
        todo = []
        for sub in subs:
            if not force and book.is_done(sub.student, sub.digest, rubric.digest, opts.budget.name):
                summary.skipped.append(sub.student)
            else:
                todo.append(sub)
        if dispatch is not None:  # another engine grades and stores them (grader.cluster: a Dask cluster)
            dispatch(todo, book, rubric.digest, summary)
            for sub in todo:
                if sub.student in summary.graded and book.overrides(sub.student):
                    stored = book.results([sub.student])
                    if stored:  # a changed automatic verdict under an override -> "to confirm"
                        reconcile(book, from_data(GradeResult, stored[0]["result"]))
                        overridden.add(sub.student)
            todo, progress = [], False
        bar = tqdm(total=len(todo), unit="entrega", disable=not progress, dynamic_ncols=True)
        stop = threading.Event()
        children: set[subprocess.Popen] = set()
        running = _Running(bar)
        try:
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                futures = {pool.submit(_run_worker, s, opts, children, stop, running): s for s in todo}
                try:
                    for fut in as_completed(futures):
                        sub = futures[fut]
                        result, ok = fut.result()
                        running.done(sub.student)
                        book.store(result, status="graded" if ok else "error",
                                   rubric_digest=rubric.digest, budget=opts.budget.name)
                        if book.overrides(sub.student):
                            reconcile(book, result)  # a changed automatic verdict -> "to confirm"
                            overridden.add(sub.student)
                        (summary.graded if ok else summary.failed).append(sub.student)
                        bar.set_postfix_str(f"{sub.student}: {_short_score(result, ok)}")
                        bar.update()
                except KeyboardInterrupt:
                    # Stop before the pool's shutdown waits: queued jobs return at once, running
                    # workers are killed; what was stored stays, the rest is redone on re-run.
                    stop.set()
                    for fut in futures:
                        fut.cancel()
                    for child in list(children):
                        _kill(child)
                    raise
        finally:
            bar.close()
        results = corrected_results(book, [s.student for s in subs], opts.rubric_path)
    for result in results:
        if result.student in overridden:  # the worker rendered the automatic verdicts
            write_report(result, opts.out_dir, pdf=opts.pdf)
    # Flags only, never a grade; written before the class pages, whose review queue reads it.
    similar = similarity_step(subs, rubric.similarity, opts.out_dir)
    write_class_pages(results, opts.out_dir, csv_dialect=csv_dialect, similarity=similar)
    return summary


class _Running:
    """Shows on the progress bar which hand-ins are being graded right now (one can take minutes)."""

    def __init__(self, bar: tqdm):
        self._bar, self._names, self._lock = bar, [], threading.Lock()

    def start(self, student: str) -> None:
        with self._lock:
            self._names.append(student)
            self._show()

    def done(self, student: str) -> None:
        with self._lock:
            if student in self._names:
                self._names.remove(student)
            self._show()

    def _show(self) -> None:
        self._bar.set_description_str(f"corrigiendo {', '.join(self._names)}" if self._names else "")


def _run_worker(
    sub: Submission, opts: GradeOptions, children: set, stop: threading.Event, running: _Running
) -> tuple[GradeResult, bool]:
    """Grade one hand-in in a child process; any failure of the grader becomes an error result."""
    if stop.is_set():
        return error_result(sub, "batch interrupted"), False
    running.start(sub.student)
    with tempfile.TemporaryDirectory(prefix="grader-job-") as tmp:
        spec = Path(tmp) / "job.json"
        out = Path(tmp) / "result.json"
        spec.write_text(json.dumps(_job_spec(sub, opts, out)), encoding="utf-8")
        cmd = [sys.executable, "-m", "grader.worker", str(spec)]
        log = opts.out_dir / "logs" / f"{file_stem(sub.student)}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as log_file:
            env = dict(os.environ, **{ENV_BATCH_PID: str(os.getpid())})
            proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                                    env=env)
            children.add(proc)
            if stop.is_set():  # interrupted while this worker was starting
                _kill(proc)
            try:
                rc = proc.wait(timeout=WORKER_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _kill(proc)
                return error_result(sub, f"worker timed out after {WORKER_TIMEOUT_S} s"), False
            finally:
                children.discard(proc)
        if rc == 0 and out.is_file():
            return from_data(GradeResult, json.loads(out.read_text(encoding="utf-8"))), True
        tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
        return error_result(sub, f"worker exited with code {rc}; log {log}:\n{tail}"), False


def _job_spec(sub: Submission, opts: GradeOptions, out: Path) -> dict:
    # The worker loads the hand-in again; the id, the record and the notes of the batch (the
    # collision notes among them) are only known here, so they travel with the job. Paths that
    # are not UTF-8 survive json.dumps as escaped surrogates (ensure_ascii).
    return {
        "submission": str(sub.path),
        "student": sub.student,
        # Discovery knows what the worker's reload cannot: the platform record and its notes.
        "record": to_data(sub.record),
        "notes": sub.notes,
        "workdir": str(out.parent / "extracted"),
        "result": str(out),
        "options": to_data(replace(opts, cache_dir=opts.retrain_cache)),
    }


def error_result(sub: Submission, detail: str) -> GradeResult:
    """A result that says the grader failed on this hand-in. It carries no grade (score 0, status error)."""
    return GradeResult(
        student=sub.student,
        score=0.0,
        max_score=10.0,
        errors=[{
            "stage": "grader",
            "code": "grader_error",
            "message": "El corrector no pudo terminar con esta entrega; el profesor la revisará a mano.",
            "detail": detail,
        }],
        meta={"status": "error", "submission_digest": sub.digest, "files": sub.files},
        record=sub.record,
    )


def _short_score(result: GradeResult, ok: bool) -> str:
    return f"{result.score:g}/{result.max_score:g}" if ok else "error"


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
