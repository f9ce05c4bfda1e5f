"""Trusted side of the probe: read its events and arrays defensively and fill in the Trace.

Everything under the events folder was written by the student's kernel, so it is treated as
hostile: files are opened without following symlinks and only when they are regular files of
bounded size; lines that are not JSON or do not type-check are skipped with a message (never
echoed); ids, cell indices and digests are range-checked; arrays are loaded with
allow_pickle=False, their shape, dtype and digest re-checked, and written out again by the grader.
A student who forges events can only make the trace say odd things.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from grader.capture.kernel.arrays import array_digest
from grader.capture.trace import (
    MAX_STEP_BATCHES,
    STEP_KINDS,
    ArrayRef,
    CompileRecord,
    EvalRecord,
    FitRecord,
    Location,
    ModelRecord,
    Tampering,
    Trace,
    TrainStepRecord,
)
from grader.codec import from_data
from grader.load import Submission

MAX_EVENTS_BYTES = 64 * 2**20
MAX_EVENTS = 20_000
MAX_MODEL_ID = 1_000_000
MAX_RECORDED_PER_KIND = 20
MAX_STEPS = 10**9
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_METHOD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,60}\.[A-Za-z_][A-Za-z0-9_]{0,60}$")



class _Invalid(ValueError):
    pass


def assemble(trace: Trace, sub: Submission, events_dir: Path, out_dir: Path, array_bytes: int) -> None:
    """Fill trace.models/fits/evals/versions from events_dir; copy valid arrays to out_dir/arrays."""
    raw = _read_regular(events_dir / "events.jsonl", MAX_EVENTS_BYTES)
    if raw is None:
        trace.messages.append("probe: no readable events file")
        return
    models: dict[int, ModelRecord] = {}
    fits_per_model: dict[int, int] = {}
    steps: dict[tuple, TrainStepRecord] = {}
    bad = notes = tampered = failed_fits = 0
    for line in raw.splitlines()[:MAX_EVENTS]:
        try:
            event = json.loads(line)
            if not isinstance(event, dict):
                raise _Invalid("not an object")
            kind = event.get("event")
            if kind == "hello":
                versions = event.get("versions")
                if isinstance(versions, dict):
                    trace.versions = {str(k)[:40]: str(v)[:40] for k, v in list(versions.items())[:10]}
            elif kind == "compile":
                model_id = _model_id(event.get("model_id"))
                _typed(CompileRecord, event.get("compile"))  # checked; fits carry their own copy
            elif kind == "fit":
                model_id = _model_id(event.get("model_id"))
                data = dict(event, index=len(trace.fits), prior_fits=fits_per_model.get(model_id, 0))
                fit = _typed(FitRecord, data)
                fit.model.model_id = model_id
                fits_per_model[model_id] = fits_per_model.get(model_id, 0) + 1
                models[model_id] = fit.model
                trace.fits.append(fit)
            elif kind == "note":
                notes += 1
                if notes <= 20:
                    trace.messages.append("probe note: " + str(event.get("text"))[:300])
            elif kind == "fit_failed":
                failed_fits += 1
                loc = _typed(Location, event.get("location"))
                _check_location(loc, sub)
                if failed_fits <= MAX_RECORDED_PER_KIND:
                    trace.failed_fits.append(Location(cell=loc.cell, line=loc.line,
                                                      function="?" if loc.function is not None else None))
            elif kind == "tamper":
                tampering = _tampering(event, sub)
                tampered += 1
                if tampered <= MAX_RECORDED_PER_KIND:
                    trace.tamperings.append(tampering)
            elif kind == "train_step":
                _merge_step(steps, _train_step(event, sub))
            elif kind in ("evaluate", "predict"):
                _model_id(event.get("model_id"))
                trace.evals.append(_typed(EvalRecord, dict(event, kind=kind)))
            else:
                raise _Invalid("unknown event")
        except (ValueError, TypeError, KeyError, RecursionError):
            bad += 1
    if bad:
        trace.messages.append(f"probe: {bad} malformed event line(s) skipped")
    trace.models = [models[k] for k in sorted(models)]
    trace.train_steps = list(steps.values())
    trace.messages += [_step_note(s) for s in trace.train_steps]
    for record in _locations(trace):
        _check_location(record, sub)
    _copy_arrays(trace, events_dir / "arrays", out_dir / "arrays", array_bytes)


def _tampering(event: dict, sub: Submission) -> Tampering:
    cell, line, replaced = event.get("cell"), event.get("line"), event.get("replaced")
    if not isinstance(replaced, list) or not replaced or not all(isinstance(r, str) and _METHOD.match(r)
                                                                 for r in replaced[:10]):
        raise _Invalid("tamper")
    cell = cell if type(cell) is int and 0 <= cell < len(sub.cells) else None
    line = line if type(line) is int and 1 <= line <= 100_000 else None
    return Tampering(cell, line, tuple(dict.fromkeys(replaced[:10])))


def _train_step(event: dict, sub: Submission) -> TrainStepRecord:
    """A `train_step` event: steps outside fit (checked: kind, model id, counts, at most
    MAX_STEP_BATCHES batch references, a location inside the hand-in)."""
    model_id = event.get("model_id")
    if event.get("kind") not in STEP_KINDS or (model_id is not None and _model_id(model_id) != model_id):
        raise _Invalid("train_step")
    x = event.get("x")
    if not isinstance(x, list) or len(x) > MAX_STEP_BATCHES:
        raise _Invalid("train_step batches")
    step = _typed(TrainStepRecord, event)
    if not 1 <= step.steps <= MAX_STEPS:
        raise _Invalid("train_step count")
    _check_location(step.location, sub)
    return step


def _merge_step(found: dict[tuple, TrainStepRecord], step: TrainStepRecord) -> None:
    """The probe re-sends a record as its count grows: keep one per kind, model and place."""
    loc = step.location
    key = (step.kind, step.model_id, loc.cell, loc.line, loc.function)
    old = found.get(key)
    if old is None:
        if len(found) < MAX_RECORDED_PER_KIND:
            found[key] = step
        return
    old.steps = max(old.steps, step.steps)
    digests = {r.digest for r in old.x}
    old.x += [r for r in step.x if r.digest not in digests][:MAX_STEP_BATCHES - len(old.x)]
    old.source = old.source or step.source


def _step_note(step: TrainStepRecord) -> str:
    model = f"model m{step.model_id}" if step.model_id is not None else "variables of no recorded model"
    where = f"cell {step.location.cell + 1 if step.location.cell is not None else '?'}, line {step.location.line}"
    return (f"probe: {step.steps} {step.kind} step(s) on {model} at {where}: judged by the protocol rules "
            "(which data they ran on), not replayed by the retrain (it replays recorded fits only)")


def tamperings(trace: Trace) -> list[Tampering]:
    """What the trace says about student code undoing the probe: the runner's record that a hidden
    at_cell found the probe removed, and the probe's `tamper` events."""
    lost = [Tampering(None, None, ("grader_probe",), before=f.cell) for f in trace.hidden_failures
            if f.step == "at_cell" and f.ename == "GraderProbeLost"]
    return lost + trace.tamperings


def _open_regular(path: Path, max_size: int | None = None) -> BinaryIO | None:
    """The file opened for reading if it is a regular file (no symlink, no FIFO) of at most
    `max_size` bytes, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    fh = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or (max_size is not None and info.st_size > max_size):
        fh.close()
        return None
    return fh


def _read_regular(path: Path, limit: int) -> str | None:
    """The first `limit` bytes of a regular file, as text."""
    fh = _open_regular(path)
    if fh is None:
        return None
    with fh:
        return fh.read(limit).decode("utf-8", "replace")


def _model_id(value: Any) -> int:
    if type(value) is not int or not 1 <= value <= MAX_MODEL_ID:
        raise _Invalid("model id")
    return value


def _typed(cls: Any, data: Any) -> Any:
    """Build `cls` from untrusted JSON data, every field checked against its type hint."""
    return from_data(cls, data, strict=True)


def _locations(trace: Trace) -> list[Location]:
    found = [f.location for f in trace.fits] + [e.location for e in trace.evals]
    found += [f.model.created for f in trace.fits] + [m.created for m in trace.models]
    found += [f.compile.location for f in trace.fits if f.compile is not None]
    found += [s.location for s in trace.train_steps]
    return found


def _check_location(loc: Location, sub: Submission) -> None:
    from grader.load import section_of

    if loc.cell is not None and not 0 <= loc.cell < len(sub.cells):
        loc.cell = None
    if loc.line is not None and not 1 <= loc.line <= 100_000:
        loc.line = None
    if loc.function is not None:
        loc.function = loc.function[:200]
    loc.section = section_of(sub, loc.cell) if loc.cell is not None else None


def _array_refs(trace: Trace) -> list[ArrayRef]:
    refs = []
    for fit in trace.fits:
        refs += [fit.x, fit.y, *(fit.validation_data or [])]
    for ev in trace.evals:
        refs += [ev.x, ev.y]
    for step in trace.train_steps:
        refs += [*step.x, step.source]
    return [r for r in refs if r is not None]


def _copy_arrays(trace: Trace, src_dir: Path, dst_dir: Path, array_bytes: int) -> None:
    """Validated copies of the arrays the trace refers to; a ref whose file is missing or does
    not match becomes stored=False."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    verdict: dict[tuple, bool] = {}
    budget = array_bytes
    for ref in _array_refs(trace):
        key = (ref.digest, tuple(ref.shape), ref.dtype)
        if key not in verdict:
            ok = False
            if ref.stored and _DIGEST.match(ref.digest) and budget > 0:
                arr = _load_checked(src_dir / f"{ref.digest}.npy", ref, budget)
                if arr is not None:
                    np.save(dst_dir / f"{ref.digest}.npy", arr, allow_pickle=False)
                    budget -= arr.nbytes
                    ok = True
            if ref.stored and not ok:
                trace.messages.append(f"probe: array {ref.digest[:12]} missing or invalid; not kept")
            verdict[key] = ok
        ref.stored = verdict[key]


def _load_checked(path: Path, ref: ArrayRef, limit: int) -> np.ndarray | None:
    fh = _open_regular(path, limit + 4096)
    if fh is None:
        return None
    with fh:
        try:
            arr = np.load(fh, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None
    if not isinstance(arr, np.ndarray) or list(arr.shape) != list(ref.shape) or arr.dtype.str != ref.dtype:
        return None
    if arr.dtype.kind not in "biuf" or array_digest(arr) != ref.digest:
        return None
    return arr
