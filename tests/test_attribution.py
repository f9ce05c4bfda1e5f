"""Attribution of fits to exercises and choice of the final model, on synthetic traces.

The builders here (make_fit, make_trace, notebook) are shared with tests/test_rules.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

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
from grader.load import Cell, Origin, Submission, load_submission
from grader.results import RunResult
from grader.rules.attribution import attribute, cell_exercises, exercise_of_text, marker_exercise

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- builders (also used by test_rules)

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


def test_eval(model_id: int, cell: int | None = None, line: int = 1, kind: str = "test") -> EvalRecord:
    return EvalRecord(kind="evaluate", model_id=model_id, x=ref(kind, 10_000 if kind == "test" else 60_000),
                      y=None, location=Location(cell=cell, line=line))


test_eval.__test__ = False  # a builder, not a test


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
    return make_trace(standard_fits(), [test_eval(FINAL_ID, cell=18)], **kw)


def final_run(val: float = 0.89, test: float = 0.88, status: str = "ok", epochs: int = 20) -> RunResult:
    return RunResult(run_id=f"m{FINAL_ID}", model_id=FINAL_ID, fit_indices=[8], exercise="ex4", label="final",
                     is_final=True, status=status, best_val_accuracy=val if status == "ok" else None,
                     last_val_accuracy=val if status == "ok" else None, epochs_run=epochs, epochs_requested=20,
                     test_accuracy=test if status == "ok" else None)


# ---------------------------------------------------------------- tests

def exercises_of(att) -> list[str | None]:
    return [f.exercise for f in att.fits]


def test_headings_attribute_every_fit_and_pick_the_final():
    att = attribute(notebook(standard_cells()), standard_trace())
    assert exercises_of(att) == ["ex1"] * 2 + ["ex2"] * 3 + ["ex3"] * 3 + ["ex4"]
    assert [f.source for f in att.fits][:2] == ["heading", "heading"]
    assert [f.label for f in att.fits] == ["sigmoid", "ReLU", "zeros", "random_normal", "glorot_uniform", "SGD",
                                           "Adam", "RMSprop", "Dropout+EarlyStopping"]
    assert att.final_model_id == FINAL_ID
    assert att.label_of_model(FINAL_ID) == "final"
    assert any("ejercicio 2" in e and "celda 8" in e for e in att.evidence)


def test_structure_attributes_without_any_heading():
    cells = [(k, s) for k, s in standard_cells() if not s.startswith("#")]
    trace = make_trace(standard_fits(with_cells=False), [test_eval(FINAL_ID)])
    att = attribute(notebook(cells), trace)
    assert exercises_of(att) == ["ex1"] * 2 + ["ex2"] * 3 + ["ex3"] * 3 + ["ex4"]
    assert {f.source for f in att.fits[:8]} == {"structure"}
    assert att.fits[8].source == "regularized"
    assert att.final_model_id == FINAL_ID


def test_renamed_headings_fall_back_to_structure():
    cells = standard_cells()
    for i, (kind, src) in enumerate(cells):
        if src.startswith("## "):
            cells[i] = (kind, "## Parte siguiente")  # names no exercise
    att = attribute(notebook(cells), standard_trace())
    assert exercises_of(att) == ["ex1"] * 2 + ["ex2"] * 3 + ["ex3"] * 3 + ["ex4"]


def test_final_prefers_the_regularised_model_evaluated_on_test():
    fits = standard_fits() + [make_fit(9, 11, mlp(("relu",), units=(1024,), dropout=0.5), cell=17, line=9)]
    # Model 11 is regularised and later, but only model 10 is evaluated on test.
    att = attribute(notebook(standard_cells()), make_trace(fits, [test_eval(FINAL_ID, cell=18)]))
    assert att.final_model_id == FINAL_ID
    att = attribute(notebook(standard_cells()), make_trace(fits, []))
    assert att.final_model_id == 11


def test_no_exercise_4_means_no_final():
    att = attribute(notebook(standard_cells()), make_trace(standard_fits()[:8]))
    assert att.final_model_id is None
    assert att.evidence[-1] == "No se ha identificado la red final."


def test_label_runs_fills_runs():
    att = attribute(notebook(standard_cells()), standard_trace())
    runs = [RunResult(run_id="m1", model_id=1, fit_indices=[0]), RunResult(run_id="m10", model_id=10, fit_indices=[8])]
    att.label_runs(runs)
    assert (runs[0].exercise, runs[0].label, runs[0].is_final) == ("ex1", "sigmoid", False)
    assert (runs[1].exercise, runs[1].label, runs[1].is_final) == ("ex4", "final", True)


def test_text_markers():
    assert exercise_of_text("2. Inicialización de parámetros") == "ex2"
    assert exercise_of_text("Regularización y red final") == "ex4"
    assert exercise_of_text("Ejercicio 3") == "ex3"
    assert exercise_of_text("Consideraciones iniciales") is None
    assert exercise_of_text("ej1.py") == "ex1"
    assert marker_exercise("# Pregunta 4.2: evaluación") == "ex4"
    assert marker_exercise("la activación sigmoide") is None


def test_py_hand_ins_attribute_by_file_and_banner():
    multi = load_submission(ROOT / "submissions" / "one_file_per_exercise")
    by_cell = cell_exercises(multi)
    for cell in multi.cells:
        expected = {"utils.py": None, "ej1.py": "ex1", "ej2.py": "ex2", "ej3.py": "ex3", "ej4.py": "ex4"}
        assert by_cell[cell.index] == expected[cell.origin.file], cell.origin
    script = load_submission(ROOT / "submissions" / "single_script.py")
    banners = {c.index: cell_exercises(script)[c.index] for c in script.cells if "# Ejercicio" in c.source
               or "# Pregunta" in c.source}
    assert sorted(set(banners.values())) == ["ex1", "ex2", "ex3", "ex4"]
    # A fit located in a banner cell is attributed by that banner, without structure.
    cell = next(i for i, ex in banners.items() if ex == "ex3")
    att = attribute(script, make_trace([make_fit(0, 1, optimizer="SGD", cell=cell, line=6)]))
    assert (att.fits[0].exercise, att.fits[0].source) == ("ex3", "heading")


def test_separate_activation_layers_count_for_the_dense_before_them():
    from grader.capture.trace import LayerSpec
    from grader.rules.attribution import signature

    layers = [LayerSpec(type="Flatten"), LayerSpec(type="Dense", units=64, activation="linear"),
              LayerSpec(type="Activation", activation="sigmoid"), LayerSpec(type="Dense", units=32),
              LayerSpec(type="LeakyReLU"), LayerSpec(type="Dense", units=10, activation="softmax")]
    assert signature(make_fit(0, 1, layers))["activation"] == ("sigmoid", "leaky_relu")
