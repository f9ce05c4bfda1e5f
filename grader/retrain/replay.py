"""The trusted retrain: rebuild every recorded model and train it here, under the grader's rules.

Every number the grade uses comes from this module, never from the student's process. For each model
object the student fitted (consecutive fits of one object replayed in order, as Keras would):
allowlisted rebuild -> checked data with the mandated 80/20 split -> seeded, deterministic training
with the student's optimizer, loss, batch size, epochs and early stopping -> test accuracy for the
final model only. Results are cached on disk by content.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from grader.capture.trace import CompileRecord, FitRecord, Trace
from grader.data import FashionMNIST, RowIndex, load_fashion_mnist, row_index
from grader.options import Budget
from grader.results import RunResult
from grader.retrain import cache as retrain_cache
from grader.retrain.allowlist import NotReproducible, build_callbacks, build_loss, build_optimizer, rebuild_model
from grader.retrain.fit_data import FitData, ForgedLabels, prepare_fit, transformed_test
from grader.retrain.plan import plan_runs
from grader.retrain.progress import RetrainProgress, shifted

__all__ = ["Budget", "NotReproducible", "rebuild_model", "retrain_trace"]

DEFAULT_BATCH_SIZE = 32  # what fit(batch_size=None) uses
# fit() arguments that do not change the numbers; any other one is noted on the run.
_HARMLESS = frozenset({"verbose", "validation_freq", "workers", "use_multiprocessing", "max_queue_size"})
_THREADS = 2  # fixed, so the same inputs give the same floating-point sums on any machine


def retrain_trace(trace: Trace, arrays_dir: Path, *, final_model_id: int | None, budget: Budget = Budget(),
                  cache_dir: Path | None = None, seed: int = 1234, data: FashionMNIST | None = None,
                  progress: RetrainProgress | None = None,
                  on_run: Callable[[RunResult], None] | None = None) -> list[RunResult]:
    """One RunResult per fitted model object, in the order of their first fit (`progress`: the bars).
    `on_run` is called with each run as soon as it is finished (grader.retrain.child streams them
    to its parent)."""
    deadline = time.monotonic() + budget.time_budget_s
    _configure_tensorflow()
    runs, groups = plan_runs(trace, final_model_id, seed)
    prepared: dict[tuple, FitData] = {}  # checked data by array digests: runs often share arrays
    fused: set[str] | None = None  # runs trained together (grader.retrain.fused), once the final one is done
    # The final model is graded on its own numbers: train it first, so the time budget never starves it.
    for run in sorted(runs, key=lambda r: not r.is_final):
        if fused is None and not run.is_final:
            fused = _retrain_fused([r for r in runs if not r.is_final], groups, Path(arrays_dir), budget,
                                   cache_dir, deadline, data, prepared, progress)
            for done in runs if on_run is not None else []:
                if done.run_id in fused:
                    on_run(done)
        if fused and run.run_id in fused:
            continue
        if time.monotonic() > deadline:
            run.status, run.cut, run.reason = "budget", "time", f"retrain time budget of {budget.time_budget_s:.0f} s used up"
        else:
            _retrain_run(run, groups[run.model_id], Path(arrays_dir), budget, cache_dir, deadline, data, prepared,
                         progress)
        if on_run is not None:
            on_run(run)
    return runs


def _retrain_run(run: RunResult, fits: list[FitRecord], arrays_dir: Path, budget: Budget,
                 cache_dir: Path | None, deadline: float, data: FashionMNIST | None,
                 prepared: dict[tuple, FitData], progress: RetrainProgress | None = None) -> None:
    """Fill `run` in place; a problem with the hand-in becomes its status, never an exception."""
    started = time.monotonic()
    epochs = _planned_epochs(run, fits, budget)
    try:
        run.cache_key = retrain_cache.cache_key(_key_material(run, fits, epochs, arrays_dir))
        hit = retrain_cache.load(cache_dir, run.cache_key)
        if hit is not None:
            for name in ("run_id", "model_id", "fit_indices", "is_final", "exercise", "label", "epochs_asked"):
                setattr(hit, name, getattr(run, name))
            vars(run).update(vars(replace(hit, cached=True, wall_s=time.monotonic() - started)))
            return
        _train(run, fits, epochs, arrays_dir, data, deadline, prepared, progress)
    except NotReproducible as exc:
        run.status, run.reason = "not_reproducible", exc.reason
    except ForgedLabels as exc:
        run.status, run.reason = "error", f"labels are not Fashion-MNIST's: {exc}"
    except Exception as exc:  # the student's model or data breaks training: data for the report
        run.status, run.reason = "error", f"training failed: {type(exc).__name__}: {exc}"[:500]
    if progress is not None:
        progress.finish(run)
    run.wall_s = time.monotonic() - started
    if run.status in ("ok", "not_reproducible") or run.cut == "epochs":
        retrain_cache.store(cache_dir, run)  # deterministic outcomes only; no deadline or crash


def _retrain_fused(runs: list[RunResult], groups: dict[int, list[FitRecord]], arrays_dir: Path, budget: Budget,
                   cache_dir: Path | None, deadline: float, data: FashionMNIST | None,
                   prepared: dict[tuple, FitData], progress: RetrainProgress | None) -> set[str]:
    """Train together the runs that may be fused (grader.retrain.fused); the ids of those it filled."""
    from grader.retrain.fused import MIN_GROUP, fusion_signature, train_group

    candidates: dict[tuple, list[tuple[RunResult, int, str]]] = {}
    for run in runs:
        fits = groups[run.model_id]
        signature = fusion_signature(fits, DEFAULT_BATCH_SIZE)
        if signature is not None:
            epochs = _planned_epochs(replace(run, notes=[]), fits, budget)  # a copy: notes once, when trained
            key = retrain_cache.cache_key(_key_material(run, fits, epochs, arrays_dir))
            if retrain_cache.load(cache_dir, key) is None:  # cache hits are served by _retrain_run
                candidates.setdefault(signature, []).append((run, epochs[0], key))
    done: set[str] = set()
    for members in candidates.values():
        if len(members) < MIN_GROUP or time.monotonic() > deadline:
            continue
        group = [run for run, _, _ in members]
        fit = groups[group[0].model_id][0]
        try:
            refs = tuple(r.digest if r else None for r in (fit.x, fit.y, *(fit.validation_data or [])))
            if refs not in prepared:
                prepared[refs] = prepare_fit(fit, arrays_dir, *_dataset(data))
            for run, _, key in members:
                run.cache_key = key
                _planned_epochs(run, groups[run.model_id], budget)
            train_group(group, [groups[r.model_id][0] for r in group], [e for _, e, _ in members], prepared[refs],
                        batch_size=int(fit.batch_size or DEFAULT_BATCH_SIZE), ignored=_HARMLESS, deadline=deadline,
                        progress=progress)
        except Exception as exc:  # whatever the fused path cannot do, these runs train alone as before
            for run in group:
                run.notes = [f"not trained in one graph ({type(exc).__name__}: {exc})"[:300]]
                run.status, run.cut, run.reason, run.cache_key = "ok", "", "", ""
            continue
        for run in group:
            if run.status == "ok" or run.cut == "epochs":
                retrain_cache.store(cache_dir, run)
            done.add(run.run_id)
    return done


def _planned_epochs(run: RunResult, fits: list[FitRecord], budget: Budget) -> list[int]:
    """Epochs the grader trains per fit: the student's, capped by the budget (caps are noted)."""
    planned = []
    for fit in fits:
        n = max(0, int(fit.epochs))
        if n > budget.max_epochs:
            run.status, run.cut = "budget", "epochs"
            run.reason = f"epochs capped at {budget.max_epochs} (the student asked for {n})"
            n = budget.max_epochs
        if budget.name == "quick" and not run.is_final and n > budget.quick_epochs:
            run.notes.append(f"fit {fit.index}: {fit.epochs} epochs shortened to {budget.quick_epochs} (quick budget)")
            n = budget.quick_epochs
        planned.append(n)
    run.epochs_requested = sum(planned)
    run.epochs_asked = sum(max(0, int(fit.epochs)) for fit in fits)
    return planned


def _key_material(run: RunResult, fits: list[FitRecord], epochs: list[int], arrays_dir: Path) -> dict[str, Any]:
    """Everything that decides the numbers; arrays by the sha256 of the files actually read."""
    material: dict[str, Any] = {"model": fits[0].model.config, "seed": run.seed, "final": run.is_final, "fits": []}
    for fit, n in zip(fits, epochs):
        refs = [fit.x, fit.y, *(fit.validation_data or [])]
        material["fits"].append({
            "compile": _compile_identity(fit.compile),
            "epochs": n,
            "batch_size": fit.batch_size,
            "shuffle": fit.shuffle,
            "callbacks": [asdict(c) for c in fit.callbacks],
            "arrays": [_file_digest(arrays_dir, r.digest) if r is not None else None for r in refs],
        })
    return material


def _file_digest(arrays_dir: Path, digest: str) -> str | None:
    # The probe's digest is the student's claim; the key uses what is really on disk.
    path = arrays_dir / f"{digest}.npy"
    if "/" in digest or not path.is_file():
        return None
    stat = path.stat()
    return _sha256_of(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file, memoised by (path, size, mtime): many runs share one training array."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _compile_identity(record: CompileRecord | None) -> dict[str, Any] | None:
    return None if record is None else asdict(record)


def _train(run: RunResult, fits: list[FitRecord], epochs: list[int], arrays_dir: Path,
           data: FashionMNIST | None, deadline: float, memo: dict[tuple, FitData],
           progress: RetrainProgress | None = None) -> None:
    import keras

    from grader.retrain.trainer import FastTrainer

    data, index = _dataset(data)
    if fits[0].prior_fits:
        run.notes.append(f"the model had been fitted {fits[0].prior_fits} time(s) before the first recorded fit")
    prepared: list[FitData] = []
    for fit in fits:
        refs = tuple(r.digest if r else None for r in (fit.x, fit.y, *(fit.validation_data or [])))
        if refs not in memo:
            memo[refs] = prepare_fit(fit, arrays_dir, data, index)
        prepared.append(memo[refs])
    keras.backend.clear_session()  # fresh layer names and memory for each run
    keras.utils.set_random_seed(run.seed)
    model = rebuild_model(fits[0].model, (None, *prepared[0].x_train.shape[1:]))
    rng = np.random.default_rng(run.seed)
    trainer, compiled, compile_record = None, None, None
    history: dict[str, list[float]] = {}
    tick, offset = (progress.start(run, sum(epochs)) if progress is not None else None), 0
    for fit, fd, n in zip(fits, prepared, epochs):
        compile_record = fit.compile or compile_record
        if compile_record is None:
            raise NotReproducible(f"fit {fit.index}: the model was not compiled (no compile() recorded)")
        identity = json.dumps(_compile_identity(compile_record), sort_keys=True, default=str)
        batch = int(fit.batch_size or DEFAULT_BATCH_SIZE)
        if identity != compiled:  # compile() again resets the optimizer, as in Keras
            model.compile(optimizer=build_optimizer(compile_record.optimizer), loss=build_loss(compile_record.loss))
            compiled, trainer = identity, None
        if trainer is None or trainer.batch_size != batch:
            trainer = FastTrainer(model, batch)
        callbacks, notes = build_callbacks(fit.callbacks)
        notes += [f"fit argument {name} ignored" for name in sorted(fit.other_kwargs) if name not in _HARMLESS]
        run.notes.extend(f"fit {fit.index}: {note}" for note in notes)
        hist, hit_deadline = trainer.fit((fd.x_train, fd.y_train), (fd.x_val, fd.y_val), epochs=n,
                                         shuffle=bool(fit.shuffle), callbacks=callbacks, rng=rng, deadline=deadline,
                                         progress=shifted(tick, offset))
        offset += n
        for key, values in hist.items():
            history.setdefault(key, []).extend(values)
        if hit_deadline:
            run.status, run.cut = "budget", "time"
            run.reason = f"retrain time budget used up during fit {fit.index} (after {len(hist['loss'])} of {n} epochs)"
            break
    run.history = history
    run.epochs_run = len(history.get("loss", []))
    val = history.get("val_accuracy") or []
    run.best_val_accuracy = max(val) if val else None
    run.last_val_accuracy = val[-1] if val else None
    if run.is_final and run.epochs_run and run.cut != "time":
        _tested_weights(run, callbacks, len(history.get("loss", [])) - len(hist.get("loss", [])))
        last = prepared[-1]
        x_test, y_test = transformed_test(data, last.x_train, last.y_train, index)
        run.test_accuracy = trainer.accuracy(x_test, y_test)


def _tested_weights(run: RunResult, callbacks: list, offset: int) -> None:
    """Which epoch's weights the test accuracy is of: Keras' EarlyStopping restores its best epoch at
    the end of the (last) fit when restore_best_weights is on; otherwise the last epoch's weights stay."""
    import keras

    val = run.history.get("val_accuracy") or []
    epoch = len(val) - 1
    for cb in callbacks:
        if isinstance(cb, keras.callbacks.EarlyStopping) and cb.restore_best_weights and cb.best_weights is not None:
            epoch, run.restored_best = offset + cb.best_epoch, True
    if 0 <= epoch < len(val):
        run.tested_epoch, run.tested_val_accuracy = epoch + 1, val[epoch]


_INDEX: list[tuple[FashionMNIST, RowIndex]] = []


def _dataset(data: FashionMNIST | None) -> tuple[FashionMNIST, RowIndex]:
    """The data set and its row index (grader.data caches the default one; others by identity)."""
    if data is None:
        return load_fashion_mnist(), row_index()
    if not _INDEX or _INDEX[0][0] is not data:
        _INDEX[:] = [(data, RowIndex.from_dataset(data))]
    return _INDEX[0]


_CONFIGURED = False


def _configure_tensorflow() -> None:
    """Fixed threads and deterministic ops; once per process, before TensorFlow's runtime starts."""
    global _CONFIGURED
    if _CONFIGURED:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(_THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(_THREADS)
    except RuntimeError:  # the runtime already started (e.g. Keras was used before): keep its threads
        pass
    tf.config.experimental.enable_op_determinism()
    _CONFIGURED = True
