"""One hand-in graded from its bytes: the task that `grader grade --cluster` sends to a Dask worker.

A worker does not share the instructor's disk. The client packs the hand-in (file or folder) into a
ZIP with `pack_handin`, and `grade_handin` unpacks it into a temporary folder on the worker and grades
it there with the batch's own worker subprocess (`python -m grader.worker`, the same sandbox as a
local batch). What comes back is plain data only: the result as JSON text and the files the grading
wrote (report HTML/PDF, result JSON, trace, log) as bytes. Nothing made inside a student's kernel is
ever unpickled, on either side. This module imports no Dask: it runs in any process.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import threading
import zipfile
from dataclasses import replace
from pathlib import Path, PurePosixPath

from grader import data
from grader.batch import _run_worker
from grader.codec import from_data, to_data
from grader.load import Submission
from grader.options import GradeOptions
from grader.results import StudentRecord

# A hand-in bigger than this is an uploaded data set or virtualenv, not homework: it is not sent.
MAX_HANDIN_BYTES = 256 * 1024 * 1024
ENV_WORKER_CACHE = "GRADER_WORKER_CACHE"  # a worker's retrain cache when the client names none


class HandinTooLarge(ValueError):
    """The hand-in's files add up to more than MAX_HANDIN_BYTES."""


def pack_handin(path: Path) -> bytes:
    """A ZIP of the hand-in at `path` (a file, or a folder's regular files) under its own name.

    Symlinks and special files are left out, as the loader leaves them out, so the worker computes
    the same content digest as the client.
    """
    files: list[tuple[Path, str]] = []
    if path.is_dir():
        for folder, dirs, names in os.walk(path):  # followlinks=False: a symlinked folder stays out
            dirs.sort()
            for name in sorted(names):
                full = Path(folder) / name
                if full.is_file() and not full.is_symlink():
                    files.append((full, f"{path.name}/{full.relative_to(path).as_posix()}"))
    elif path.is_file():
        files.append((path, path.name))
    total = sum(f.stat().st_size for f, _ in files)
    if total > MAX_HANDIN_BYTES:
        raise HandinTooLarge(f"{path}: {total} bytes, more than the {MAX_HANDIN_BYTES} a worker is sent")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        if path.is_dir():
            zf.writestr(path.name + "/", b"")  # an empty folder is still a (bad) hand-in
        for full, arcname in files:
            zf.write(full, arcname)
    return buf.getvalue()


def unpack_handin(blob: bytes, into: Path, name: str) -> Path:
    """Write the ZIP made by `pack_handin` under `into`; return the hand-in's path there."""
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        for info in zf.infolist():
            rel = PurePosixPath(info.filename)
            if rel.is_absolute() or ".." in rel.parts or not rel.parts or rel.parts[0] != name:
                raise ValueError(f"unexpected member {info.filename!r} in the hand-in's ZIP")
            target = into.joinpath(*rel.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                while chunk := src.read(1024 * 1024):
                    dst.write(chunk)
    return into / name


def make_job(sub: Submission, opts: GradeOptions, rubric_text: str) -> dict:
    """What one Dask task receives: plain data, the hand-in as ZIP bytes (may raise HandinTooLarge)."""
    return {
        "student": sub.student,
        "name": sub.path.name,
        "digest": sub.digest,
        "record": to_data(sub.record),
        "options": json.dumps(to_data(opts)),
        "rubric": rubric_text,
        "handin": pack_handin(sub.path),
    }


def grade_handin(job: dict) -> dict:
    """The Dask task: grade one hand-in from `make_job`'s data on this machine.

    Returns {"status": "graded" | "error" | "unfit", "worker": address, "result": JSON text,
    "files": {path relative to OUT: bytes}, "message": English line for "unfit"}.
    "unfit" means this machine cannot grade at all (no Fashion-MNIST offline): the client retries
    the hand-in on another worker.
    """
    worker = worker_address()
    opts = from_data(GradeOptions, json.loads(job["options"]))
    missing = missing_fashion_mnist(opts.data_dir)
    if missing:
        return {"status": "unfit", "worker": worker, "result": "", "files": {},
                "message": f"worker {worker} cannot grade: Fashion-MNIST is not available offline there "
                           f"({missing}); run `grader data` on that machine"}
    with tempfile.TemporaryDirectory(prefix="grader-remote-") as tmp:
        root = Path(tmp)
        rubric = root / "rubric.yaml"
        rubric.write_text(job["rubric"], encoding="utf-8")
        out = root / "out"
        opts = replace(opts, out_dir=out, rubric_path=rubric,
                       cache_dir=opts.cache_dir or worker_cache_dir())
        record = from_data(StudentRecord, job["record"]) if job.get("record") else None
        sub = Submission(job["student"], unpack_handin(job["handin"], root / "handin", job["name"]),
                         "unknown", digest=job["digest"], record=record)
        result, ok = _run_worker(sub, opts, set(), threading.Event(), _NoDisplay())
        files = {p.relative_to(out).as_posix(): p.read_bytes()
                 for p in sorted(out.rglob("*")) if p.is_file() and not p.is_symlink()}
    return {"status": "graded" if ok else "error", "worker": worker,
            "result": json.dumps(result.to_dict(), ensure_ascii=False), "files": files, "message": ""}


def missing_fashion_mnist(data_dir: Path | None) -> str:
    """"" when this machine holds the four files where the sandbox copies them from; else where it looked.

    The same places as the student's workspace (grader.capture.workspace), without Keras'
    downloader: a worker must grade offline.
    """
    if data_dir:  # --data-dir means that folder only, as for grader.data.load_fashion_mnist
        places = [Path(data_dir)]
    else:
        places = [Path(os.environ[data.ENV_DATA_DIR])] if os.environ.get(data.ENV_DATA_DIR) else []
        places += [data.DEBIAN_DIR, data.default_keras_home() / "datasets" / "fashion-mnist"]
    for folder in places:
        if all((folder / name).is_file() for name in data.FILES.values()):
            return ""
    return "looked in " + ", ".join(str(p) for p in places)


def worker_cache_dir() -> Path:
    """The retrain cache of a worker machine when the client gave no --cache-dir."""
    if os.environ.get(ENV_WORKER_CACHE):
        return Path(os.environ[ENV_WORKER_CACHE])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "grader" / "retrain"


def worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):  # not inside a Dask worker (a direct call, a test)
        return f"pid {os.getpid()}"


class _NoDisplay:
    """The batch shows running hand-ins on its progress bar; a worker has none."""

    def start(self, student: str) -> None:
        pass

    def done(self, student: str) -> None:
        pass
