"""The Trace: what the student's code did with Keras, as recorded by the probe.

The probe inside the student kernel writes raw JSON-lines events and `.npy` arrays; the trusted side
(`grader.capture.runner`) validates them and assembles this Trace. Only JSON and `.npy` cross the
trust boundary. `Trace.to_json()` / `Trace.from_json()` round-trip exactly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.codec import from_data, to_json

SCHEMA_VERSION = 3  # 2: tamperings, failed fits, timings and stopping limits as typed fields; 3: train_steps


@dataclass
class Location:
    cell: int | None = None  # 0-based index into Submission.cells
    line: int | None = None  # 1-based line inside that cell
    section: str | None = None  # nearest heading above the cell (or file name for .py hand-ins)
    function: str | None = None  # enclosing Python function, if any


@dataclass
class ArrayRef:
    digest: str  # sha256 of the array's bytes; also the .npy file name
    shape: list[int]
    dtype: str
    stored: bool = True  # False when the array was over the size bound and not saved
    # Filled on the trusted side from row fingerprints: {"train": n, "test": n, "other": n}.
    rows: dict[str, int] | None = None


@dataclass
class LayerSpec:
    """One layer, normalised from Keras' own config (names as Keras 3 spells them)."""

    type: str  # Keras class name: Dense, Dropout, Flatten, BatchNormalization, ...
    units: int | None = None
    activation: str | None = None  # "relu", "sigmoid", "softmax" (tf.nn.* mapped)
    kernel_initializer: str | None = None  # "glorot_uniform", "zeros", "random_normal", ...
    kernel_regularizer: str | None = None  # "l2(0.001)" style summary
    rate: float | None = None  # Dropout
    config: dict[str, Any] = field(default_factory=dict)  # the full Keras layer config


@dataclass
class ModelRecord:
    model_id: int  # probe-assigned serial, stable for the life of the Python object
    class_name: str
    layers: list[LayerSpec]
    input_shape: list[int | None] | None
    config: dict[str, Any]  # keras.saving.serialize_keras_object(model), JSON-safe
    created: Location = field(default_factory=Location)


@dataclass
class CompileRecord:
    optimizer: dict[str, Any]  # {"class_name": "SGD", "config": {"learning_rate": 0.01, ...}}
    loss: Any
    metrics: list[Any]
    location: Location = field(default_factory=Location)


@dataclass
class CallbackRecord:
    class_name: str  # "EarlyStopping", ...
    config: dict[str, Any]  # monitor, patience, restore_best_weights, ...


@dataclass
class FitRecord:
    index: int  # order of the fit in the run (0-based)
    model_id: int
    prior_fits: int  # how many times this same model object was fitted before
    model: ModelRecord  # the model as it was at this fit
    compile: CompileRecord | None
    epochs: int
    batch_size: int | None
    validation_split: float
    x: ArrayRef | None
    y: ArrayRef | None
    validation_data: list[ArrayRef] | None = None  # [x_val, y_val]
    callbacks: list[CallbackRecord] = field(default_factory=list)
    shuffle: bool = True
    other_kwargs: dict[str, str] = field(default_factory=dict)  # repr of anything else
    location: Location = field(default_factory=Location)


@dataclass
class EvalRecord:
    kind: str  # "evaluate" | "predict"
    model_id: int
    x: ArrayRef | None
    y: ArrayRef | None
    location: Location = field(default_factory=Location)


# Names ipykernel gives a cell's code ("invalid syntax (2550002217.py, line 1)", "/tmp/ipykernel_7/123.py"):
# internal to the kernel, meaningless to the student, and the cell and line are recorded on their own.
_INTERNAL_FILE = re.compile(r"\s*\((?:[^()]*/)?(?:\d+\.py|<ipython-input-[^>]*>|<string>), line \d+\)"
                            r"|(?:/tmp/ipykernel_\d+/)?\b\d{6,}\.py\b")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def student_text(evalue: str) -> str:
    """A kernel's error text as the student should read it: no colours, no internal file names."""
    text = _INTERNAL_FILE.sub(lambda m: "" if m.group(0).lstrip().startswith("(") else "la celda",
                              _ANSI.sub("", evalue))
    return text.strip()[:2000]


# What TrainStepRecord.kind may be: Keras training (and measuring) outside `fit`.
STEP_KINDS = ("train_on_batch", "test_on_batch", "apply_gradients")
MAX_STEP_BATCHES = 8  # batches kept per TrainStepRecord (steps 1, 2, 4, 8, ...)


@dataclass
class TrainStepRecord:
    """Steps outside `fit` (a `train_on_batch` loop, `optimizer.apply_gradients` after a GradientTape),
    one record per kind, model and place. The probe records them and does not replay them: the rules
    judge which data they ran on like an open fit; the retrain uses the recorded fits only."""

    kind: str  # one of STEP_KINDS
    model_id: int | None  # None: apply_gradients on variables of no model the probe saw
    steps: int  # calls counted (inside a tf.function: once per tracing)
    x: list[ArrayRef] = field(default_factory=list)  # batches at steps 1, 2, 4, ... (MAX_STEP_BATCHES)
    source: ArrayRef | None = None  # the array the batches are slices (views) of, when they are
    location: Location = field(default_factory=Location)


# The limits with which the grader stops a cell (CellError.limit); the rubric explains each one.
LIMITS = ("cell_timeout", "total_timeout", "memory", "kernel_died", "disk", "check_time")


@dataclass
class CellError:
    cell: int | None
    ename: str
    evalue: str  # the student's error text, or the grader's English detail when it stopped the cell
    line: int | None = None
    traceback: str = ""  # last lines, ANSI colours stripped
    limit: str | None = None  # one of LIMITS when the grader stopped the cell, else None
    limit_value: float | None = None  # that limit: seconds or MB


@dataclass(frozen=True)
class Tampering:
    """Student code undid the probe's patches (cell = where it happened, when known)."""

    cell: int | None
    line: int | None
    replaced: tuple[str, ...]  # "Model.fit", ... or ("grader_probe",) when the probe itself was removed
    before: int | None = None  # noticed by the hidden cell before this cell


@dataclass
class CellTiming:
    cell: int  # 0-based student cell
    seconds: float


@dataclass
class CaptureTimings:
    kernel_start_s: float = 0.0
    probe_install_s: float = 0.0  # imports TensorFlow in the kernel
    cells: list[CellTiming] = field(default_factory=list)


@dataclass
class HiddenFailure:
    """A grader cell (not the student's) that failed in the kernel: the probe's install, the
    at_cell(i) check before student cell i, the at_end() check, or the 'is it alive' ping."""

    step: str  # "install" | "at_cell" | "at_end" | "ping"
    cell: int | None  # the student cell it ran before (at_cell)
    ename: str


@dataclass
class Trace:
    student: str
    status: str = "ok"  # "ok" | "timeout" | "kernel_died" | "memory" | "not_run" | "check_time" (grader check's bound)
    models: list[ModelRecord] = field(default_factory=list)
    fits: list[FitRecord] = field(default_factory=list)
    evals: list[EvalRecord] = field(default_factory=list)
    errors: list[CellError] = field(default_factory=list)
    static: dict[str, Any] = field(default_factory=dict)  # grader.source.static facts
    messages: list[str] = field(default_factory=list)  # notes for the instructor (English)
    cells_started: list[int] | None = None  # student cells the runner started; None: not recorded
    hidden_failures: list[HiddenFailure] = field(default_factory=list)
    tamperings: list[Tampering] = field(default_factory=list)  # the probe's `tamper` events
    failed_fits: list[Location] = field(default_factory=list)  # fits the probe saw but failed to record
    train_steps: list[TrainStepRecord] = field(default_factory=list)  # training outside fit
    timings: CaptureTimings | None = None
    duration_s: float = 0.0
    limits: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def check_stop(self) -> CellError | None:
        """Where `grader check`'s time bound stopped the student's cells (status "check_time"), if it did."""
        return next((e for e in self.errors if e.limit == "check_time"), None)

    def to_json(self) -> str:
        return to_json(self, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Trace:
        data = json.loads(text)
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"trace schema version {data.get('schema_version')!r} is not the {SCHEMA_VERSION} this"
                             " grader reads: capture the hand-in again (grader capture, or grade it again)")
        return from_data(cls, data)

    def save(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Trace:
        return cls.from_json(path.read_text(encoding="utf-8"))
