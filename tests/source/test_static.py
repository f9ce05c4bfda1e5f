"""Static analysis on real code strings and on the sample hand-ins."""

from __future__ import annotations

import json

import pytest

from grader.load import load_submission
from grader.source.reported import reported_metrics
from grader.source.static import (
    analyze,
    normalize_activation,
    normalize_initializer,
    normalize_optimizer,
    strip_magics,
)
from tests.builders import ROOT, notebook

SAMPLES = ROOT / "submissions"


def facts_of(*sources: str) -> dict:
    return analyze(notebook([("code", s) for s in sources], saved=False))


def names(facts: dict, kind: str) -> list[str]:
    return [f["name"] for f in facts[kind]]


def test_magics_and_shell_lines_are_blanked_keeping_line_numbers():
    src = "%matplotlib inline\n!pip install keras\nfor i in range(2):\n    %time x = 1\nmodel.fit(x, y)"
    code, magics = strip_magics(src)
    assert [n for n, _ in magics] == [1, 2, 4]
    assert code.splitlines()[3] == "    pass" and code.splitlines()[4] == "model.fit(x, y)"
    facts = facts_of(src, "%%bash\nls -l", "%%time\nmodel.fit(x_train, y_train, validation_split=0.2)")
    assert facts["syntax_errors"] == []
    assert [(f["cell"], f["line"]) for f in facts["fits"]] == [(0, 5), (2, 2)]
    assert strip_magics("%%bash\nls")[0] is None


def test_prose_in_a_code_cell_is_a_syntax_error_with_cell_and_line():
    facts = facts_of("import keras", "x = 1\nLa red con ReLU converge más rápido que con sigmoide.")
    assert facts["syntax_errors"] == [{"cell": 1, "line": 2, "msg": "invalid syntax",
                                       "text": "La red con ReLU converge más rápido que con sigmoide."}]


def test_fit_calls_keep_their_arguments_as_source():
    facts = facts_of(
        "es = EarlyStopping(monitor='val_loss', patience=3, restore_best_weights=True)\n"
        "history = model.fit(x_train, y_train, epochs=10, batch_size=64,\n"
        "                    validation_data=(x_test, y_test), callbacks=[es], verbose=0)\n"
        "h2 = modelo.fit(x=x_tr, y=y_tr, epochs=EPOCHS, validation_split=0.2)\n"
        "scaler.fit(x)\n"
        "model.evaluate(x_test, y_test, verbose=0)\n"
        "p = model.predict(x_test)"
    )
    first, second, third = facts["fits"]
    assert (first["line"], first["end_line"], first["target"], first["x"], first["y"]) == (2, 3, "model", "x_train",
                                                                                          "y_train")
    assert first["validation_data"] == "(x_test, y_test)" and first["validation_split"] is None
    assert (first["epochs"], first["batch_size"], first["callbacks"]) == ("10", "64", "[es]")
    assert (second["x"], second["epochs"], second["validation_split"]) == ("x_tr", "EPOCHS", 0.2)
    assert third["target"] == "scaler"  # recorded; rules look at trace fits and validation kwargs
    assert [(e["kind"], e["args"]) for e in facts["evals"]] == [("evaluate", ["x_test", "y_test"]),
                                                                ("predict", ["x_test"])]
    stop = next(r for r in facts["regularization"] if r["kind"] == "EarlyStopping")
    assert (stop["monitor"], stop["restore_best_weights"]) == ("val_loss", "True")


def test_initializer_spellings():
    facts = facts_of(
        "Dense(64, kernel_initializer='zero')\n"
        "Dense(64, kernel_initializer=keras.initializers.Zeros())\n"
        "Dense(64, kernel_initializer=RandomNormal(mean=0.0, stddev=0.05))\n"
        "Dense(64, kernel_initializer='normal')\n"
        "Dense(64, kernel_initializer='he_normal')\n"
        "Dense(64, kernel_initializer=initializers.RandomUniform(minval=-0.05, maxval=0.05))\n"
        "Dense(64, kernel_initializer='uniform')\n"
        "Dense(64, kernel_initializer=GlorotUniform())\n"
        "Dense(64, kernel_initializer='glorot_normal')"
    )
    assert names(facts, "initializers") == ["zeros", "zeros", "random_normal", "random_normal", "he_normal",
                                            "random_uniform", "random_uniform", "glorot_uniform", "glorot_normal"]
    assert [f["line"] for f in facts["initializers"]] == list(range(1, 10))
    assert facts["layers"][2]["initializer_source"] == "RandomNormal(mean=0.0, stddev=0.05)"


def test_optimizers_activations_and_regularisation():
    facts = facts_of(
        "import tensorflow as tf\nfrom keras import regularizers\n"
        "m = Sequential([Dense(128, activation=tf.nn.relu, kernel_regularizer=regularizers.l2(0.001)),\n"
        "    BatchNormalization(), Dropout(0.3), Dense(64, activation='sigmoid'), LeakyReLU(),\n"
        "    Dense(10, activation=tf.nn.softmax, kernel_regularizer='l1')])\n"
        "m.compile(optimizer=SGD(lr=0.01, momentum=0.9), loss='sparse_categorical_crossentropy')\n"
        "m.compile(optimizer='rmsprop', loss='mse')\n"
        "opt = keras.optimizers.Adam(learning_rate=1e-3)"
    )
    assert [(o["name"], o["learning_rate"], o["line"]) for o in facts["optimizers"]] == [
        ("SGD", "0.01", 6), ("RMSprop", None, 7), ("Adam", "1e-3", 8)]
    assert names(facts, "activations") == ["relu", "sigmoid", "leaky_relu", "softmax"]
    assert [(r["kind"], r["line"]) for r in facts["regularization"]] == [
        ("l2", 3), ("BatchNormalization", 4), ("Dropout", 4), ("l1", 5)]
    assert facts["models"] == [{"cell": 0, "line": 3, "end_line": 5, "kind": "Sequential", "target": "m"}]
    assert [i["module"] for i in facts["imports"]] == ["tensorflow", "keras"] and facts["uses_keras"]


def test_values_fed_through_loops_and_helpers():
    facts = facts_of(
        "def crear(act, init='glorot_uniform'):\n"
        "    return Sequential([Dense(64, activation=act, kernel_initializer=init), Dense(10)])\n",
        "for act in ['sigmoid', 'relu']:\n    crear(act).fit(x_train, y_train, validation_split=0.2)\n",
        "for nombre, init in [('normal', 'random_uniform'), ('ceros', 'zeros')]:\n    crear('relu', init)\n",
    )
    # The loop is in another cell than activation=act: only the plain-string mentions can tell.
    assert facts["activations"] == []
    assert (facts["layers"][0]["function"], facts["layers"][0]["activation_source"]) == ("crear", "act")
    mentioned = {(m["kind"], m["name"], m["cell"]) for m in facts["mentions"]}
    assert {("activation", "sigmoid", 1), ("activation", "relu", 1), ("initializer", "random_uniform", 2),
            ("initializer", "zeros", 2), ("initializer", "glorot_uniform", 0)} <= mentioned
    # 'normal' is a label here, next to 'random_uniform': never read as a random normal initializer.
    assert ("initializer", "random_normal", 2) not in mentioned
    assert (facts["fits"][0]["cell"], facts["fits"][0]["target"]) == (1, "crear(act)")
    same_cell = facts_of("for act in ['sigmoid', 'relu']:\n    m = Sequential([Dense(8, activation=act)])")
    assert [(a["name"], a["via"]) for a in same_cell["activations"]] == [("relu", "act"), ("sigmoid", "act")]


def test_manual_splits_of_train():
    facts = facts_of("x_val, y_val = x_train[:12000], y_train[:12000]\nx_tr = x_train[12000:]\n"
                     "a, b, c, d = train_test_split(x_train, y_train, test_size=0.2)")
    slices = facts["train_slices"]
    assert [(s["target"], s["start"], s["stop"]) for s in slices[:3]] == [
        ("x_val", None, 12000), ("y_val", None, 12000), ("x_tr", 12000, None)]
    assert slices[-1]["test_size"] == 0.2 and slices[-1]["base"] == "x_train"


def test_name_normalisers():
    assert normalize_initializer("Zeros") == "zeros" and normalize_initializer("TruncatedNormal") == "truncated_normal"
    assert normalize_initializer("he_uniform") == "he_uniform" and normalize_initializer("foo") is None
    assert normalize_optimizer("rmsprop") == "RMSprop" and normalize_optimizer("AdamW") == "AdamW"
    assert normalize_activation("ReLU") == "relu" and normalize_activation("LeakyReLU") == "leaky_relu"


def test_reported_metrics_in_saved_outputs():
    keras3 = "375/375 - 3s - 9ms/step - accuracy: 0.8433 - loss: 0.4376 - val_accuracy: 0.8471 - val_loss: 0.4203\n"
    keras2 = "Epoch 1/3\n - 3s - loss: 0.7412 - acc: 0.7561 - val_loss: 0.4853 - val_acc: 0.8268\n"
    bar = "\r 10/375 [....] - ETA: 3s - loss: 1.2 - accuracy: 0.61\x08\x08\r375/375 [====] - accuracy: 0.85\n"
    sub = notebook(
        [("code", "model.fit(x_train, y_train, validation_split=0.2)"), ("code", "model.fit(x, y)"),
         ("code", "model.fit(a, b)"), ("code", "model.evaluate(x_test, y_test)"),
         ("code", "print('Test accuracy:', acc)"), ("code", "print(res)")],
        outputs={0: [{"output_type": "stream", "name": "stdout", "text": keras3}],
                 1: [{"output_type": "stream", "name": "stderr", "text": [keras2]}],
                 2: [{"output_type": "stream", "name": "stdout", "text": bar}],
                 3: [{"output_type": "execute_result", "data": {"text/plain": "[0.3512, 0.8764]"}}],
                 4: [{"output_type": "stream", "name": "stdout", "text": "Test accuracy: 88.5%\n"}],
                 5: [{"output_type": "stream", "name": "stdout", "text": "Precisión en validación: 0.9012\n"}]},
        saved=False)
    found = [(r["cell"], r["metric"], r["value"]) for r in reported_metrics(sub)]
    assert found == [(0, "accuracy", 0.8433), (0, "val_accuracy", 0.8471), (1, "accuracy", 0.7561),
                     (1, "val_accuracy", 0.8268), (2, "accuracy", 0.85),
                     (3, "test_accuracy", 0.8764), (4, "test_accuracy", 0.885), (5, "val_accuracy", 0.9012)]


# ---------------------------------------------------------------- the sample hand-ins

def sample(name: str):
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"sample {name} not generated yet")
    return load_submission(path)


@pytest.mark.parametrize("name", ["correct_full.ipynb", "legacy_keras2.ipynb", "no_saved_outputs.ipynb",
                                  "single_script.py", "one_file_per_exercise"])
def test_samples_of_trabajo2(name):
    sub = sample(name)
    facts = analyze(sub)
    json.dumps(facts)  # JSON-safe, as Trace.static must be
    assert facts["uses_fashion_mnist"] and facts["uses_keras"] and facts["syntax_errors"] == []
    assert facts["fits"] and all(f["validation_split"] == 0.2 for f in facts["fits"])
    assert {"SGD", "Adam", "RMSprop"} <= {o["name"] for o in facts["optimizers"] + facts["mentions"]}
    assert {"Dropout", "EarlyStopping"} <= {r["kind"] for r in facts["regularization"]}
    assert any(any("test" in a for a in e["args"]) for e in facts["evals"] if e["kind"] == "evaluate")


def test_legacy_keras2_idioms():
    facts = analyze(sample("legacy_keras2.ipynb"))
    assert {"cell": 1, "line": 1, "text": "%matplotlib inline"} in facts["magics"]
    assert ("SGD", "0.01") in {(o["name"], o["learning_rate"]) for o in facts["optimizers"]}
    assert any(i["name"] == "zeros" and i["source"] == "'zero'" for i in facts["initializers"])
    assert any(a["source"] == "tf.nn.relu" for a in facts["activations"])
    metrics = reported_metrics(sample("legacy_keras2.ipynb"))
    assert any(r["metric"] == "val_accuracy" and "val_acc:" in r["text"] for r in metrics)
    assert any(r["metric"] == "test_accuracy" for r in metrics)


def test_wrong_assignment_is_not_fashion_mnist():
    facts = analyze(sample("wrong_assignment.ipynb"))
    assert not facts["uses_fashion_mnist"] and facts["fits"]
    assert facts["fits"][0]["validation_split"] == 0.1


@pytest.mark.parametrize("name,cell_text", [("prose_in_code_cell.ipynb", "Análisis")])
def test_prose_sample_has_a_syntax_error(name, cell_text):
    sub = sample(name)
    errors = analyze(sub)["syntax_errors"]
    assert len(errors) == 1 and cell_text in sub.cells[errors[0]["cell"]].source


def test_hostile_code_never_crashes_the_analysis():
    facts = facts_of("x = " + "+".join(["1"] * 50_000), "y = 1\x00", "model.fit(" + "f(" * 150 + ")" * 151,
                     "s = 'a\u2028b'\nmodel.fit(x_train, y_train, validation_split=0.2)  # ünïcode\f",
                     "")
    assert [u["cell"] for u in facts["unanalyzed"]] == [0]
    assert [e["cell"] for e in facts["syntax_errors"]] == [1]
    assert facts["fits"][0]["cell"] == 2
    last = facts["fits"][-1]
    assert (last["cell"], last["line"], last["x"], last["validation_split"]) == (3, 2, "x_train", 0.2)
    json.dumps(facts)
