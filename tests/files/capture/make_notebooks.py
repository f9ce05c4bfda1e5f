"""Writes the small hand-ins used by tests/test_capture.py. Refresh: python tests/files/capture/make_notebooks.py"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell as code
from nbformat.v4 import new_markdown_cell as md
from nbformat.v4 import new_notebook

HERE = Path(__file__).parent

IMPORTS = """\
import json
import numpy as np
import matplotlib.pyplot as plt
import tensorflow as tf
import keras
from keras.models import Sequential
from keras.layers.core import Dense
from tensorflow.keras.layers import Flatten
from keras.datasets import fashion_mnist
(x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
x_train, y_train = x_train[:2000] / 255.0, y_train[:2000]
x_test = x_test / 255.0"""

PLOT = """\
def plot_acc(history):
    plt.plot(history.history['acc'])
    plt.plot(history.history['val_acc'])
    plt.title('model accuracy')"""

FIRST_FIT = """\
model = Sequential()
model.add(Flatten(input_shape=(28, 28)))
model.add(Dense(32, activation='relu', kernel_initializer='zero'))
model.add(Dense(10, activation=tf.nn.softmax, kernel_initializer='zero'))
model.compile(optimizer=keras.optimizers.SGD(lr=0.1), loss='sparse_categorical_crossentropy', metrics=['acc'])
history = model.fit(x_train, y_train, epochs=2, batch_size=64, validation_split=0.2, verbose=0)
plot_acc(history)
print(max(history.history['val_acc']))"""

SECOND_FIT = """\
# keeps training the same object, and validates on the test set
history2 = model.fit(x_train, y_train, epochs=1,
                     validation_data=(x_test, y_test), verbose=0)"""

HELPER = """\
def train(init):
    m = Sequential([Flatten(input_shape=(28, 28)),
                    Dense(32, activation='relu', kernel_initializer=init),
                    Dense(10, activation='softmax')])
    m.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    return m.fit(x_train, y_train, epochs=3, validation_split=0.2, verbose=0)

h_normal = train(keras.initializers.RandomNormal(stddev=0.05))"""

CRASH = """\
a = 1
raise ValueError('boom in the middle')"""

AFTER_CRASH = """\
final = Sequential([Flatten(input_shape=(28, 28)), Dense(64, activation='relu'),
                    keras.layers.Dropout(0.3), Dense(10, activation='softmax')])
final.compile(optimizer='rmsprop', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
stop = keras.callbacks.EarlyStopping(monitor='val_loss', patience=3, restore_best_weights=True)
final.fit(x_train, y_train, epochs=5, validation_split=0.2, callbacks=[stop], verbose=0)
loss, acc = final.evaluate(x_test, y_test, verbose=0)
pred = np.argmax(final.predict(x_test[:100], verbose=0), axis=1)
print(loss, acc, pred.shape)"""

SECURITY = """\
import os, socket
found = {"uid": os.getuid(), "cwd_files": sorted(os.listdir("."))}
for name, action in [("root_ssh", lambda: os.listdir("/root/.ssh")),
                     ("root", lambda: os.listdir("/root")),
                     ("parent", lambda: os.listdir("..")),
                     ("grader", lambda: __import__("grader").__file__),
                     ("net", lambda: socket.create_connection(("1.1.1.1", 53), timeout=2))]:
    try:
        found[name] = repr(action())
    except Exception as exc:
        found[name] = "ERROR " + type(exc).__name__
print("SECURITY " + json.dumps(found))"""


def main() -> None:
    nb = new_notebook()
    nb.cells = [md("# Trabajo 2: Aspectos prácticos"), code(IMPORTS), code(PLOT),
                md("## 1. Unidades de activación"), code(FIRST_FIT), code(SECOND_FIT),
                md("## 2. Inicialización de parámetros"), code(HELPER), code(CRASH),
                code("prose pasted in a code cell is not Python"), code(AFTER_CRASH), code(SECURITY)]
    nbformat.write(nb, HERE / "legacy_reused_model.ipynb")

    nb = new_notebook()
    nb.cells = [code("x = 1\nfor i in range(20000):\n    print('spam ' * 20)"), code("while True:\n    pass"), code("y = 2\nprint('after the loop')"),
                code("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"),
                code("print('never reached')")]
    nbformat.write(nb, HERE / "infinite_loop.ipynb")

    nb = new_notebook()
    # Shared anonymous memory escapes RLIMIT_DATA: only the grader's RSS watchdog stops cell 3.
    nb.cells = [code("import numpy as np"), code("big = np.ones(30 * 10**9 // 8)"),
                code("print('still alive')"),
                code("import mmap\nshared = mmap.mmap(-1, 8 * 2**30)\nchunk = b'x' * 2**24\n"
                     "for _ in range(512):\n    shared.write(chunk)"),
                code("print('not reached')")]
    nbformat.write(nb, HERE / "allocates_30gb.ipynb")

    nb = new_notebook()
    nb.cells = [code("import numpy as np\nimport keras\n"
                     "m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])\n"
                     "m.compile('sgd', 'mse')\nm.fit(np.zeros((8, 4)), np.zeros((8, 2)), epochs=3)"),
                code("import os, signal, subprocess\n"
                     "daemon = subprocess.Popen(['sleep', '317'], start_new_session=True)\n"
                     "os.kill(os.getpid(), signal.SIGKILL)"),
                code("print('not reached')")]
    nbformat.write(nb, HERE / "kernel_dies.ipynb")


if __name__ == "__main__":
    main()
