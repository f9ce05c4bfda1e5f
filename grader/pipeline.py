"""grade_submission(): load -> capture -> retrain -> rules -> report, readable top to bottom.

Everything a student's hand-in can get wrong ends up as data in its GradeResult; only problems of the
grader's own configuration raise (GraderError).
"""

from __future__ import annotations

import contextlib
import json
import platform
import shutil
import time
from dataclasses import replace
from pathlib import Path

from grader import __version__
from grader.capture.runner import CheckBound, capture_submission
from grader.capture.trace import Trace
from grader.load import Submission, file_stem
from grader.options import GradeOptions
from grader.resources import default_rubric
from grader.results import GradeResult
from grader.retrain.progress import RetrainProgress, budget_cuts, model_name
from grader.rules.places import place


def grade_submission(sub: Submission, opts: GradeOptions, progress: RetrainProgress | None = None) -> GradeResult:
    """Grade one hand-in and write its trace, result JSON and report under opts.out_dir (`progress`:
    a bar per retrained model, for `grader check`)."""
    from grader.report import render_report
    from grader.retrain.child import RetrainChild, retrain_in_child
    from grader.rules import grade, load_rubric
    from grader.rules.attribution import attribute
    from grader.rules.base import trained_rows
    from grader.source.recognize import recognize
    from grader.source.static import analyze

    started = time.monotonic()
    rubric = load_rubric(opts.rubric_path)
    work = opts.out_dir / "work" / file_stem(sub.student)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)

    timings: dict[str, float] = {}
    # The retrain process starts now: it imports TensorFlow and loads the data set while the notebook runs.
    with RetrainChild(work, opts.budget.memory_mb) if sub.load_error is None else contextlib.nullcontext() as child:
        if sub.load_error is None:
            t = time.monotonic()
            private = [Path(opts.rubric_path or default_rubric()).resolve().parent, opts.retrain_cache]
            bound = opts.budget.capture_seconds()
            trace = capture_submission(sub, work, limits=opts.limits, data_dir=opts.data_dir, private=private,
                                       check=None if bound is None else CheckBound(started + bound, bound))
            timings["capture_s"] = time.monotonic() - t
        else:
            trace = Trace(student=sub.student, status="not_run")
        trace.static = analyze(sub)
        annotate_rows(trace, work / "arrays", opts.data_dir)
        trace.save(work / "trace.json")

        attribution = attribute(sub, trace, rubric.aliases)
        if progress is not None:
            progress.name_models({f.model_id: model_name(f.model_id, attribution.exercise_of_model(f.model_id),
                                                         attribution.label_of_model(f.model_id)) for f in trace.fits})
        t = time.monotonic()
        retrain_s = opts.budget.retrain_seconds(t - started)  # the quick budget bounds the whole check
        runs = retrain_in_child(  # its own process: a memory limit, and killed at the time budget
            work / "trace.json",
            work / "arrays",
            work,
            final_model_id=attribution.final_model_id,
            budget=replace(opts.budget, time_budget_s=retrain_s),
            cache_dir=opts.retrain_cache,
            seed=opts.seed,
            progress=progress,
            child=child,
        )
    timings["retrain_s"] = time.monotonic() - t
    attribution.label_runs(runs)
    note_train_steps(runs, trace)

    t = time.monotonic()
    verdicts, exercises, score, max_score = grade(sub, trace, runs, rubric, attribution)
    timings["rules_s"] = time.monotonic() - t
    recognition = recognize(sub, trace.static, trained_rows(trace), rubric.recognition) if sub.load_error is None else None
    final = next((r for r in runs if r.is_final and r.status == "ok"), None)
    timings["total_s"] = time.monotonic() - started
    result = GradeResult(
        student=sub.student,
        score=score,
        max_score=max_score,
        rules=verdicts,
        runs=runs,
        exercises=exercises,
        final=None
        if final is None
        else {
            "val_accuracy": final.best_val_accuracy,
            "test_accuracy": final.test_accuracy,
            "epochs": final.epochs_run,
            "tested_epoch": final.tested_epoch,
            "tested_val_accuracy": final.tested_val_accuracy,
        },
        errors=_errors(sub, trace, rubric.messages),
        record=sub.record,
        meta={
            "grader_version": __version__,
            "rubric": rubric.title,
            "rubric_digest": rubric.digest,
            "budget": opts.budget.name,
            "seed": opts.seed,
            "submission_digest": sub.digest,
            "files": sub.files,
            "kind": sub.kind,
            "notes": sub.notes,
            "trace_status": trace.status,
            "recognition": recognition.to_dict() if recognition else None,
            "capture_notes": capture_notes(trace),
            "budget_cuts": budget_cuts(runs, opts.budget.name, retrain_s, capture_cut=_capture_cut(sub, trace)),
            "versions": {"python": platform.python_version(), **_library_versions()},
            "timings": {k: round(v, 2) for k, v in timings.items()},
        },
    )
    t = time.monotonic()
    render_report(result, opts.out_dir, pdf=opts.pdf)
    result.meta["timings"]["report_s"] = round(time.monotonic() - t, 2)  # after total_s: the benchmark's split
    (opts.out_dir / "results").mkdir(parents=True, exist_ok=True)
    (opts.out_dir / "results" / f"{file_stem(sub.student)}.json").write_text(
        json.dumps(result.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8"
    )
    if not opts.keep_work:
        shutil.rmtree(work / "arrays", ignore_errors=True)
    return result


def annotate_rows(trace: Trace, arrays_dir: Path, data_dir: Path | None) -> None:
    """Fill ArrayRef.rows (train/test/other counts) from row fingerprints of the saved arrays."""
    import numpy as np

    from grader.data import row_index

    refs = [r for f in trace.fits for r in (f.x, *(f.validation_data or ()))]
    refs += [e.x for e in trace.evals]
    refs += [r for s in trace.train_steps for r in (*s.x, s.source)]
    seen: dict[str, dict[str, int]] = {}
    index = None
    for ref in refs:
        if ref is None or not ref.stored:
            continue
        if ref.digest not in seen:
            path = arrays_dir / f"{ref.digest}.npy"
            if not path.is_file():
                continue
            index = index or row_index(data_dir)
            seen[ref.digest] = index.match(np.load(path, allow_pickle=False)).summary()
        ref.rows = seen[ref.digest]


def note_train_steps(runs: list, trace: Trace) -> None:
    """The retrain replays recorded fits only: a model also trained by steps outside fit
    (train_on_batch, GradientTape) says so on its run; the protocol rules judge those steps."""
    for run in runs:
        for step in trace.train_steps:
            if step.model_id == run.model_id and step.kind != "test_on_batch":
                run.notes.append(f"also trained by {step.steps} {step.kind} step(s) that the retrain does not replay")


def _capture_cut(sub: Submission, trace: Trace) -> str:
    """The quick check's bound stopped the notebook: where, in Spanish ("" when it did not)."""
    stop = trace.check_stop()
    if stop is None:
        return ""
    return (f"ejecución del cuaderno: detenida en {place(sub, stop.cell)}, se acabó el tiempo de la comprobación "
            f"({stop.limit_value or 0:.0f} s); lo que venía después no se ejecutó")


def capture_notes(trace: Trace) -> list[str]:
    """The sandbox's and the probe's notes for the instructor."""
    return list(trace.messages)


def _errors(sub: Submission, trace: Trace, texts) -> list[dict]:
    errors: list[dict] = []
    if sub.load_error is not None:
        e = sub.load_error
        errors.append({"stage": "load", "code": e.code, "message": e.message, "file": e.file})
    if trace.status not in ("ok", "not_run"):
        # Spanish for the student from the rubric; the sandbox's own (English) notes for the instructor.
        notes = capture_notes(trace)
        errors.append({
            "stage": "capture",
            "code": trace.status,
            "message": texts.get(f"capture_{trace.status}", f"La ejecución se detuvo ({trace.status})."),
            "detail": "; ".join(notes),
        })
    for ce in trace.errors:
        error = {"stage": "cell", "code": ce.ename, "message": ce.evalue, "cell": ce.cell, "line": ce.line}
        if ce.limit is not None:  # the grader stopped the cell: say so in Spanish, keep the English for the instructor
            template = texts.get(_LIMIT_MESSAGES[ce.limit], "")
            value = "?" if ce.limit_value is None else f"{ce.limit_value:g}"
            error["message"] = template.format(value=value) if template else ce.evalue
            error["detail"] = ce.evalue
        errors.append(error)
    return errors


# The limit that stopped a cell (CellError.limit), and the rubric message that explains it.
_LIMIT_MESSAGES = {"cell_timeout": "cell_timeout", "total_timeout": "cell_timeout_total", "memory": "cell_memory",
                   "kernel_died": "cell_kernel_died", "disk": "cell_disk", "check_time": "cell_check_time"}


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("tensorflow-cpu", "keras", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
