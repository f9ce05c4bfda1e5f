"""Builders shared by the tests: hand-ins, traces, fits and runs made from real types.

One module, imported by test files (`from builders import ...`); test files never import each other.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import nbformat
import numpy as np

from grader.capture.trace import (
    ArrayRef,
    CallbackRecord,
    CompileRecord,
    EvalRecord,
    FitRecord,
    LayerSpec,
    Location,
    ModelRecord,
    Trace,
)
from grader.load import Cell, Origin, Submission
from grader.results import RunResult, Verdict
from grader.rules import grade, load_rubric
from grader.rules.attribution import attribute
from grader.source.static import analyze

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FILES = TESTS / "files"
RUBRIC = load_rubric()


# ---------------------------------------------------------------- notebooks for real kernels

TINY = """\
import numpy as np
from tensorflow import keras
from keras.datasets import fashion_mnist
(x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
x_train, x_test = x_train[:1500] / 255.0, x_test / 255.0
y_train = y_train[:1500]
"""


def tiny_notebook(units: int) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Trabajo 2: Aspectos prácticos de las redes neuronales"),
        nbformat.v4.new_code_cell(TINY),
        nbformat.v4.new_markdown_cell("## 4. Regularización y red final"),
        nbformat.v4.new_code_cell(
            "model = keras.Sequential([keras.layers.Flatten(input_shape=(28, 28)),\n"
            f"    keras.layers.Dense({units}, activation='relu'), keras.layers.Dropout(0.2),\n"
            "    keras.layers.Dense(10, activation='softmax')])\n"
            "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n"
            "history = model.fit(x_train, y_train, epochs=1, batch_size=64, validation_split=0.2)\n"
        ),
        nbformat.v4.new_code_cell("model.evaluate(x_test, y_test)"),
    ]
    return nb


# ---------------------------------------------------------------- hand-ins and traces

def ref(kind: str = "train", n: int = 60_000, rows: dict | None = None) -> ArrayRef:
    digest = hashlib.sha256(f"{kind}{n}{rows}".encode()).hexdigest()
    return ArrayRef(digest=digest, shape=[n, 28, 28], dtype="float32", rows=rows if rows is not None else {kind: n})


def mlp(acts: tuple[str, ...] = ("relu", "relu"), init: str = "glorot_uniform", units: tuple[int, ...] = (256, 128),
        dropout: float | None = None, regularizer: str | None = None) -> list[LayerSpec]:
    layers = [LayerSpec(type="Flatten")]
    for act, n in zip(acts, units):
        layers.append(LayerSpec(type="Dense", units=n, activation=act, kernel_initializer=init,
                                kernel_regularizer=regularizer))
        if dropout:
            layers.append(LayerSpec(type="Dropout", rate=dropout))
    layers.append(LayerSpec(type="Dense", units=10, activation="softmax", kernel_initializer=init))
    return layers


def make_fit(index: int, model_id: int, layers: list[LayerSpec] | None = None, *, optimizer: str = "Adam",
             cell: int | None = None, line: int = 1, section: str | None = None, validation_split: float = 0.2,
             validation_data: list[ArrayRef] | None = None, x: ArrayRef | None = None,
             callbacks: tuple[str, ...] = (), prior_fits: int = 0, epochs: int = 3) -> FitRecord:
    model = ModelRecord(model_id=model_id, class_name="Sequential", layers=layers or mlp(), input_shape=[None, 28, 28],
                        config={})
    return FitRecord(
        index=index, model_id=model_id, prior_fits=prior_fits, model=model,
        compile=CompileRecord(optimizer={"class_name": optimizer, "config": {"learning_rate": 0.001}},
                              loss="sparse_categorical_crossentropy", metrics=["accuracy"]),
        epochs=epochs, batch_size=128, validation_split=validation_split,
        x=x or ref("train"), y=ref("train"), validation_data=validation_data,
        callbacks=[CallbackRecord(class_name=c, config={"monitor": "val_loss"}) for c in callbacks],
        location=Location(cell=cell, line=line, section=section),
    )


def make_eval(model_id: int, cell: int | None = None, line: int = 1, kind: str = "test") -> EvalRecord:
    return EvalRecord(kind="evaluate", model_id=model_id, x=ref(kind, 10_000 if kind == "test" else 60_000),
                      y=None, location=Location(cell=cell, line=line))



def make_trace(fits: list[FitRecord], evals: list[EvalRecord] = (), status: str = "ok", errors=()) -> Trace:
    models = {f.model_id: f.model for f in fits}
    return Trace(student="s", status=status, models=list(models.values()), fits=list(fits), evals=list(evals),
                 errors=list(errors))


def notebook(cells: list[tuple[str, str]], outputs: dict[int, list[dict]] | None = None,
             counts: dict[int, int] | None = None, name: str = "t.ipynb", saved: bool = True) -> Submission:
    """A notebook; with `saved`, code cells without given outputs/counts get a small output, in order."""
    outputs, counts = dict(outputs or {}), dict(counts or {})
    if saved:
        code = [i for i, (kind, _) in enumerate(cells) if kind == "code"]
        number_them = not counts
        for n, i in enumerate(code, start=1):
            outputs.setdefault(i, [{"output_type": "stream", "name": "stdout", "text": "ok\n"}])
            if number_them:
                counts[i] = n
    built = [Cell(index=i, cell_type=kind, source=src, outputs=outputs.get(i, []), execution_count=counts.get(i),
                  origin=Origin(name, i)) for i, (kind, src) in enumerate(cells)]
    return Submission(student="s", path=Path(name), kind="ipynb", cells=built, files=[name])


# The standard, correct hand-in: headings, one code cell per training, analysis after each exercise.
ANALYSIS = {
    "ex1": "La ReLU converge más rápido que la sigmoide. La sigmoide se satura y su derivada es muy pequeña, "
           "así que el gradiente se desvanece al propagarse hacia atrás por las capas ocultas de la red; con "
           "ReLU la derivada vale uno y el entrenamiento avanza mucho más deprisa desde la primera época.",
    "ex2": "Con todos los pesos a ceros la red no aprende: todas las neuronas son simétricas y reciben el mismo "
           "gradiente. Con una normal aleatoria y con Glorot uniforme se rompe la simetría y la red aprende; "
           "Glorot ajusta la varianza al tamaño de cada capa y da el mejor resultado en validación.",
    "ex3": "SGD con la tasa de aprendizaje por defecto es el optimizador más lento. Adam y RMSprop adaptan el "
           "paso de cada parámetro y convergen en menos épocas; Adam obtiene la mejor precisión de validación y "
           "es el que uso para la red final del último ejercicio.",
    "ex4": "La red final usa Dropout para reducir el sobreajuste y EarlyStopping sobre la pérdida de validación. "
           "En test obtiene algo menos que en validación porque todas las decisiones se tomaron mirando la "
           "validación, que por eso es una estimación algo optimista de la generalización.",
}
FIT = "history = model.fit(x_train, y_train, epochs=3, batch_size=128, validation_split=0.2)"


def standard_cells() -> list[tuple[str, str]]:
    def build(act: str = "relu", init: str = "glorot_uniform", opt: str = "adam") -> str:
        return (f"model = Sequential([Flatten(input_shape=(28, 28)),\n"
                f"    Dense(256, activation='{act}', kernel_initializer='{init}'),\n"
                f"    Dense(128, activation='{act}', kernel_initializer='{init}'),\n"
                f"    Dense(10, activation='softmax')])\n"
                f"model.compile(optimizer='{opt}', loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n"
                f"{FIT}")
    final = ("model = Sequential([Flatten(input_shape=(28, 28)), Dense(512, activation='relu'), Dropout(0.2),\n"
             "    Dense(10, activation='softmax')])\n"
             "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n"
             "es = EarlyStopping(monitor='val_loss', patience=4, restore_best_weights=True)\n"
             "history = model.fit(x_train, y_train, epochs=20, batch_size=64, validation_split=0.2, callbacks=[es])")
    return [
        ("markdown", "# Trabajo 2: Aspectos prácticos de las redes neuronales"),                       # 0
        ("code", "import keras\nfrom keras.datasets import fashion_mnist\n"
                 "(x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()"),                 # 1
        ("markdown", "## 1. Unidades de activación\n\n**Ejercicio 1**: compara sigmoide y ReLU."),      # 2
        ("code", build(act="sigmoid")),                                                                # 3
        ("code", build(act="relu")),                                                                   # 4
        ("markdown", ANALYSIS["ex1"]),                                                                 # 5
        ("markdown", "## 2. Inicialización de parámetros"),                                            # 6
        ("code", build(init="zeros")),                                                                 # 7
        ("code", build(init="random_normal")),                                                         # 8
        ("code", build(init="glorot_uniform")),                                                        # 9
        ("markdown", ANALYSIS["ex2"]),                                                                 # 10
        ("markdown", "## 3. Optimizadores"),                                                           # 11
        ("code", build(opt="sgd")),                                                                    # 12
        ("code", build(opt="adam")),                                                                   # 13
        ("code", build(opt="rmsprop")),                                                                # 14
        ("markdown", ANALYSIS["ex3"]),                                                                 # 15
        ("markdown", "## 4. Regularización y red final"),                                              # 16
        ("code", final),                                                                               # 17
        ("code", "model.evaluate(x_test, y_test)"),                                                    # 18
        ("markdown", ANALYSIS["ex4"]),                                                                 # 19
    ]


FINAL_ID = 10


def standard_fits(with_cells: bool = True) -> list[FitRecord]:
    def c(cell: int) -> int | None:
        return cell if with_cells else None
    return [
        make_fit(0, 1, mlp(("sigmoid", "sigmoid")), cell=c(3), line=6),
        make_fit(1, 2, mlp(("relu", "relu")), cell=c(4), line=6),
        make_fit(2, 3, mlp(init="zeros"), cell=c(7), line=6),
        make_fit(3, 4, mlp(init="random_normal"), cell=c(8), line=6),
        make_fit(4, 5, mlp(init="glorot_uniform"), cell=c(9), line=6),
        make_fit(5, 6, optimizer="SGD", cell=c(12), line=6),
        make_fit(6, 7, optimizer="Adam", cell=c(13), line=6),
        make_fit(7, 8, optimizer="RMSprop", cell=c(14), line=6),
        make_fit(8, FINAL_ID, mlp(("relu",), units=(512,), dropout=0.2), cell=c(17), line=5,
                 callbacks=("EarlyStopping",), epochs=20),
    ]


def standard_trace(**kw) -> Trace:
    return make_trace(standard_fits(), [make_eval(FINAL_ID, cell=18)], **kw)


def final_run(val: float = 0.89, test: float = 0.88, status: str = "ok", epochs: int = 20) -> RunResult:
    return RunResult(run_id=f"m{FINAL_ID}", model_id=FINAL_ID, fit_indices=[8], exercise="ex4", label="final",
                     is_final=True, status=status, best_val_accuracy=val if status == "ok" else None,
                     last_val_accuracy=val if status == "ok" else None, epochs_run=epochs, epochs_requested=20,
                     test_accuracy=test if status == "ok" else None)


# ---------------------------------------------------------------- rules

def run_rules(sub: Submission, trace: Trace, runs=None) -> tuple[dict[str, Verdict], float]:
    trace.static = trace.static or analyze(sub)
    verdicts, _scores, total, _max = grade(sub, trace, runs if runs is not None else [final_run()], RUBRIC,
                                           attribute(sub, trace, RUBRIC.aliases))
    return {v.id: v for v in verdicts}, total


def standard(**changes) -> tuple[Submission, Trace]:
    return notebook(standard_cells()), standard_trace(**changes)


def replace_fit(trace: Trace, index: int, **kw) -> Trace:
    old = trace.fits[index]
    trace.fits[index] = make_fit(old.index, old.model_id, old.model.layers, cell=old.location.cell,
                                 line=old.location.line, optimizer=old.compile.optimizer["class_name"],
                                 callbacks=tuple(c.class_name for c in old.callbacks), **kw)
    return trace


# ---------------------------------------------------------------- retrain: recorded fits on real rows

N = 3000  # rows of x_train used by most tests: 2400 train / 600 validation


def save(folder: Path, array: np.ndarray) -> ArrayRef:
    digest = hashlib.sha256(array.tobytes()).hexdigest()
    np.save(folder / f"{digest}.npy", array)
    return ArrayRef(digest, list(array.shape), str(array.dtype))


def dense_model(hidden: int = 32, input_shape=(28, 28), **dense) -> keras.Model:
    return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(hidden, activation="relu", **dense),
                             keras.layers.Dense(10, activation="softmax")])


def record(model: keras.Model, model_id: int) -> ModelRecord:
    config = {"class_name": type(model).__name__, "config": model.get_config()}
    return ModelRecord(model_id, type(model).__name__, [], None, json.loads(json.dumps(config)))


def sgd(**kw) -> CompileRecord:
    opt = keras.optimizers.SGD(**kw)
    return CompileRecord({"class_name": "SGD", "config": opt.get_config()}, "sparse_categorical_crossentropy",
                         ["accuracy"])


def recorded_fit(folder: Path, x, y, *, model_id=1, model=None, index=0, prior=0, epochs=1, batch_size=64,
             compile=None, callbacks=(), validation_data=None) -> FitRecord:
    return FitRecord(index=index, model_id=model_id, prior_fits=prior, model=record(model or dense_model(), model_id),
                     compile=compile or sgd(learning_rate=0.05), epochs=epochs, batch_size=batch_size,
                     validation_split=0.2, x=save(folder, x), y=save(folder, y),
                     validation_data=None if validation_data is None else [save(folder, a) for a in validation_data],
                     callbacks=list(callbacks))


def trace_of(*fits: FitRecord) -> Trace:
    """A Trace that went through JSON, as the real one does."""
    return Trace.from_json(Trace(student="test", fits=list(fits)).to_json())


def train_rows(data, n=N):
    return (data.x_train[:n] / 255.0).astype(np.float32), data.y_train[:n]


# ---------------------------------------------------------------- cluster: hand-ins and a CLI run

STUDENTS = {"ana", "bruno", "carla"}

SCRIPT_EX4 = """\
from utils import *
model = keras.Sequential([keras.layers.Flatten(input_shape=(28, 28)),
    keras.layers.Dense(24, activation='relu'), keras.layers.Dense(10, activation='softmax')])
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
history = model.fit(x_train, y_train, epochs=1, batch_size=64, validation_split=0.2)
model.evaluate(x_test, y_test)
"""


def fixed_notebook(units: int) -> nbformat.NotebookNode:
    """The batch tests' tiny notebook with fixed cell ids: the same bytes (and digest) in every test."""
    nb = tiny_notebook(units)
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
    return nb


def make_handins(folder: Path) -> Path:
    """Three tiny hand-ins, one of each shape: a notebook, a folder of scripts, a ZIP with a notebook."""
    folder.mkdir(parents=True)
    nbformat.write(fixed_notebook(16), folder / "ana.ipynb")
    (folder / "bruno").mkdir()
    (folder / "bruno" / "utils.py").write_text(TINY, encoding="utf-8")
    (folder / "bruno" / "ej4.py").write_text(SCRIPT_EX4, encoding="utf-8")
    with zipfile.ZipFile(folder / "carla.zip", "w") as zf:
        # A fixed date: the ZIP's bytes (its digest) are the same in every test.
        zf.writestr(zipfile.ZipInfo("carla/trabajo2.ipynb", (2026, 1, 1, 0, 0, 0)), nbformat.writes(fixed_notebook(32)))
    return folder


def run_cli(*args: str, timeout: float = 900, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True,
                          timeout=timeout, env=cli_env(), **kw)


def cli_env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **extra)


def gradebook_rows(out: Path) -> dict[str, dict]:
    with sqlite3.connect(out / "gradebook.sqlite") as db:
        return {s: {"status": st, "attempts": a, "result": json.loads(j)}
                for s, st, a, j in db.execute("SELECT student, status, attempts, result_json FROM results")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
