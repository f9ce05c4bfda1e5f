"""Capture speed: one realistic 10-fit hand-in (full Fashion-MNIST, 20 epochs each) through the
sandboxed kernel and the probe.

Run: .venv/bin/python bench/capture.py [--keep DIR]
Prints wall time, kernel start, probe install (TensorFlow import) and per-cell times, and the size of
the arrays written. Not a test: nothing here asserts a time (the target is under 30 s per hand-in).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell as code
from nbformat.v4 import new_markdown_cell as md

from grader.capture.runner import capture_submission
from grader.load import load_submission

SETUP = """\
import time
import numpy as np
import matplotlib.pyplot as plt
import tensorflow as tf
from tensorflow import keras
from keras.models import Sequential
from keras.layers import Dense, Dropout, Flatten
(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
x_train = x_train / 255.0
x_test = x_test / 255.0

def plot_acc(history, title=None):
    plt.figure()
    plt.plot(history.history['acc'])
    plt.plot(history.history['val_acc'])
    plt.title(title or 'accuracy')
    plt.show()"""

EXPERIMENT = """\
model = Sequential([Flatten(input_shape=(28, 28)),
                    Dense(128, activation={act!r}, kernel_initializer={init!r}),
                    Dense(64, activation={act!r}, kernel_initializer={init!r}),
                    Dense(10, activation=tf.nn.softmax)])
model.compile(optimizer={opt}, loss='sparse_categorical_crossentropy', metrics=['acc'])
start = time.time()
history = model.fit(x_train, y_train, epochs=20, batch_size=128, validation_split=0.2, verbose=0)
print('time', time.time() - start)
plot_acc(history, {title!r})
print(model.evaluate(x_test, y_test, verbose=0))"""

EXPERIMENTS = [
    ("1. Unidades de activación", "sigmoid", "glorot_uniform", "'sgd'"),
    (None, "relu", "glorot_uniform", "'sgd'"),
    ("2. Inicialización de parámetros", "relu", "zeros", "'sgd'"),
    (None, "relu", "random_normal", "'sgd'"),
    (None, "relu", "glorot_uniform", "'sgd'"),
    ("3. Optimizadores", "relu", "glorot_uniform", "keras.optimizers.SGD(lr=0.01)"),
    (None, "relu", "glorot_uniform", "'adam'"),
    (None, "relu", "glorot_uniform", "keras.optimizers.RMSprop(learning_rate=0.001)"),
    (None, "relu", "glorot_uniform", "'adagrad'"),
    ("4. Regularización y red final", "relu", "he_normal", "'adam'"),
]


def write_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [md("# Trabajo 2: Aspectos prácticos de las redes neuronales"), code(SETUP)]
    for i, (heading, act, init, opt) in enumerate(EXPERIMENTS):
        if heading:
            nb.cells.append(md(f"## {heading}"))
        nb.cells.append(code(EXPERIMENT.format(act=act, init=init, opt=opt, title=f"experimento {i}")))
    nbformat.write(nb, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the notebook and the trace here")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
            run(Path(tmp))


def run(folder: Path) -> None:
    write_notebook(folder / "ten_fits.ipynb")
    sub = load_submission(folder / "ten_fits.ipynb")
    start = time.perf_counter()
    trace = capture_submission(sub, folder / "out")
    wall = time.perf_counter() - start
    arrays = sum(p.stat().st_size for p in (folder / "out" / "arrays").iterdir())
    print(f"capture wall time:  {wall:6.1f} s   status {trace.status}, {len(trace.fits)} fits, "
          f"{len(trace.evals)} evals, {len(trace.errors)} errors")
    timings = trace.timings
    if timings is not None:
        print(f"kernel start:       {timings.kernel_start_s:6.1f} s")
        print(f"probe install:      {timings.probe_install_s:6.1f} s   (imports TensorFlow)")
        print("per cell:           " + ", ".join(f"{c.cell}: {c.seconds} s" for c in timings.cells))
    for message in trace.messages:
        print("note:", message)
    print(f"arrays written:     {arrays / 2**20:6.1f} MiB in {folder / 'out' / 'arrays'}")


if __name__ == "__main__":
    main()
