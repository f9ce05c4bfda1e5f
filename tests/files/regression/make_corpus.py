"""Write the regression hand-ins of issue 13 (run from the repository root; the files are committed).

Every hand-in is written for these tests, in the shapes real hand-ins have: a Markdown export of
only the answers, a course edition that numbers Trabajo 2's exercises 9-12, a final model tested
without restore_best_weights, a SyntaxError cell, a Markdown export whose "analysis" is printed
output, a quick-budget check and a best model picked by its test accuracy. Data are sliced to a few
hundred rows and fits run one to five epochs, so that each grades in well under a minute.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

LOAD = """\
import numpy as np
import tensorflow as tf
from tensorflow import keras
(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
x_train, y_train = x_train[:1200] / 255.0, y_train[:1200]
x_test, y_test = x_test[:400] / 255.0, y_test[:400]
"""


def net(act: str = "relu", init: str | None = None, opt: str = "adam", dropout: bool = False, name: str = "model") -> str:
    kw = f", kernel_initializer='{init}'" if init else ""
    drop = "    keras.layers.Dropout(0.2),\n" if dropout else ""
    return (f"{name} = keras.Sequential([keras.layers.Flatten(input_shape=(28, 28)),\n"
            f"    keras.layers.Dense(64, activation='{act}'{kw}),\n{drop}"
            f"    keras.layers.Dense(32, activation='{act}'{kw}),\n"
            f"    keras.layers.Dense(10, activation='softmax')])\n"
            f"{name}.compile(optimizer='{opt}', loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n")


def write_nb(name: str, cells: list[tuple[str, str]]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
                for kind, src in cells]
    nbformat.write(nb, HERE / name)


ANSWERS_ONLY = """\
# Trabajo 2: Aspectos prácticos de las redes neuronales

Entrega de las respuestas. Trabajamos con Fashion-MNIST: 60000 imágenes de entrenamiento y 10000 de test.

## Consideraciones iniciales

Cada entrenamiento usa un modelo nuevo y se valida con una parte de los datos.

## 1. Unidades de activación

Se compara la misma red con activación sigmoide y con ReLU en las capas ocultas.

```python
def construir(activacion, inicial='glorot_uniform'):
    red = keras.Sequential([keras.layers.Flatten(input_shape=(28, 28)),
        keras.layers.Dense(128, activation=activacion, kernel_initializer=inicial),
        keras.layers.Dense(64, activation=activacion, kernel_initializer=inicial),
        keras.layers.Dense(10, activation='softmax')])
    return red

for activacion in ['sigmoid', 'relu']:
    red = construir(activacion)
    red.compile(optimizer='sgd', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    red.fit(x_train, y_train, epochs=10, validation_data=(x_test, y_test))
```

La ReLU aprende antes: la sigmoide se satura y su derivada se hace pequeña, el gradiente se desvanece
en las capas ocultas y la convergencia es mucho más lenta durante las primeras épocas del entrenamiento.

## 2. Inicialización de parámetros

```python
for inicial in ['zeros', 'random_normal', 'glorot_uniform']:
    red = construir('relu', inicial)
    red.compile(optimizer='sgd', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    red.fit(x_train, y_train, epochs=10, validation_data=(x_test, y_test))
```

Con ceros todas las neuronas son simétricas y la red no aprende nada; con la normal y con Glorot se rompe
la simetría y la red aprende, y Glorot ajusta la varianza de los pesos al tamaño de cada una de las capas.

## 3. Optimizadores

```python
for optimizador in ['sgd', 'adam', 'rmsprop']:
    red = construir('relu')
    red.compile(optimizer=optimizador, loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    red.fit(x_train, y_train, epochs=10, validation_data=(x_test, y_test))
```

Adam y RMSprop adaptan la tasa de aprendizaje de cada peso y convergen en menos épocas que SGD, que es el
más lento de los tres; Adam da la mejor precisión y es el que uso en la red final del ejercicio cuatro.

## 4. Regularización y red final

```python
final = keras.Sequential([keras.layers.Flatten(input_shape=(28, 28)),
    keras.layers.Dense(256, activation='relu'), keras.layers.Dropout(0.3),
    keras.layers.Dense(10, activation='softmax')])
final.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
final.fit(x_train, y_train, epochs=20, validation_data=(x_test, y_test))
final.evaluate(x_test, y_test)
```

El Dropout reduce el sobreajuste de la red final; en test obtiene algo menos que en validación porque
las decisiones de diseño se tomaron mirando la validación y esa estimación resulta algo optimista.
"""

PRINTED_OUTPUTS = """\
# Trabajo 2: Aspectos prácticos de las redes neuronales

```python
import numpy as np
from tensorflow import keras
(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
x_train, y_train = x_train[:1200] / 255.0, y_train[:1200]
x_test, y_test = x_test[:400] / 255.0, y_test[:400]
```

## 4. Regularización y red final

```python
final = keras.Sequential([keras.layers.Flatten(input_shape=(28, 28)),
    keras.layers.Dense(64, activation='relu'), keras.layers.Dropout(0.2),
    keras.layers.Dense(10, activation='softmax')])
final.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
historia = final.fit(x_train, y_train, epochs=2, validation_split=0.2)
```

Resultados:

    Epoch 1/2
    30/30 - 1s - loss: 1.4021 - accuracy: 0.5563 - val_loss: 0.9312 - val_accuracy: 0.6917 - 1s/epoch
    Epoch 2/2
    30/30 - 0s - loss: 0.8407 - accuracy: 0.7146 - val_loss: 0.7588 - val_accuracy: 0.7375 - 190ms/epoch
    La validación sube con el dropout, el sobreajuste baja, la regularización generaliza mejor en test

```
Test accuracy: 0.7150 de la red con dropout, sobreajuste y regularización comparados en validación
```

Ver arriba.
"""


def main() -> None:
    (HERE / "answers_only.md").write_text(ANSWERS_ONLY, encoding="utf-8")
    (HERE / "printed_outputs.md").write_text(PRINTED_OUTPUTS, encoding="utf-8")
    intro = [("markdown", f"## Ejercicio {n}: {title}\n\n{text}") for n, title, text in (
        (1, "tensores", "Crea un tensor constante y muestra su forma."),
        (2, "operaciones", "Suma y multiplica dos tensores."),
        (3, "NumPy", "Convierte un tensor en un array."),
        (4, "gradientes", "Calcula una derivada con GradientTape."),
        (5, "capas", "Crea una capa Dense y mira sus pesos."),
        (6, "datos", "Lee un lote de datos."),
        (7, "pérdidas", "Calcula una entropía cruzada a mano."),
        (8, "métricas", "Calcula una precisión a mano."))]
    intro_code = ["t = tf.constant([[1.0, 2.0], [3.0, 4.0]])\nprint(t.shape)", "print(t + t, t * t)",
                  "print(t.numpy())", "v = tf.Variable(3.0)\nwith tf.GradientTape() as g:\n    y = v * v\n"
                  "print(g.gradient(y, v))", "capa = keras.layers.Dense(4)\ncapa.build((None, 2))\n"
                  "print(len(capa.weights))", "print(np.arange(6).reshape(2, 3))",
                  "print(-np.log(0.8))", "print(np.mean([1, 0, 1]))"]
    merged: list[tuple[str, str]] = [("markdown", "# Laboratorio y Trabajo 2"),
                                      ("code", "import numpy as np\nimport tensorflow as tf\nfrom tensorflow import keras")]
    for md, code in zip(intro, intro_code):
        merged += [md, ("code", code)]
    fit = "model.fit(training_images, training_labels, epochs=1, validation_split=0.2)"
    merged += [
        ("markdown", "## Loading the data"),
        ("code", "mnist = tf.keras.datasets.fashion_mnist\n"
                 "(training_images, training_labels), (test_images, test_labels) = mnist.load_data()\n"
                 "training_images, training_labels = training_images[:1200] / 255.0, training_labels[:1200]\n"
                 "test_images, test_labels = test_images[:400] / 255.0, test_labels[:400]"),
        ("markdown", "## Exercise 9: Activation functions\n\nTrain the same network with sigmoid and with ReLU."),
        ("code", net("sigmoid") + fit), ("code", net("relu") + fit),
        ("markdown", "## Ejercicio 10\n\nCompara tres formas de dar valor inicial a los pesos."),
        ("code", net(init="zeros") + fit), ("code", net(init="random_normal") + fit), ("code", net() + fit),
        ("markdown", "## Exercise 11: Optimizers"),
        ("code", net(opt="sgd") + fit), ("code", net(opt="adam") + fit), ("code", net(opt="rmsprop") + fit),
        ("markdown", "## Ejercicio 12\n\nRed final con regularización."),
        ("code", net(dropout=True) + fit + "\nmodel.evaluate(test_images, test_labels)"),
    ]
    write_nb("merged_edition.ipynb", merged)
    head = [("markdown", "# Trabajo 2: Aspectos prácticos de las redes neuronales"), ("code", LOAD)]
    write_nb("gap_no_restore.ipynb", head + [
        ("markdown", "## 4. Regularización y red final"),
        ("code", net(dropout=True) + "parada = keras.callbacks.EarlyStopping(monitor='val_loss', patience=1)\n"
                 "historia = model.fit(x_train, y_train, epochs=4, validation_split=0.2, callbacks=[parada])"),
        ("code", "model.evaluate(x_test, y_test)"),
    ])
    write_nb("syntax_error.ipynb", head + [
        ("markdown", "## 1. Unidades de activación"),
        ("code", "for act in ['sigmoid', 'relu']\n    print(act)"),
        ("code", net("relu") + "model.fit(x_train, y_train, epochs=1, validation_split=0.2)"),
    ])
    write_nb("quick_budget.ipynb", head + [
        ("markdown", "## 1. Unidades de activación"),
        ("code", net("sigmoid") + "model.fit(x_train, y_train, epochs=5, validation_split=0.2)"),
        ("code", net("relu") + "model.fit(x_train, y_train, epochs=5, validation_split=0.2)"),
    ])
    write_nb("selection_on_test.ipynb", head + [
        ("markdown", "## 3. Optimizadores"),
        ("code", "resultados = []\nfor opt in ['sgd', 'adam']:\n" + "\n".join("    " + line for line in net(opt="sgd").replace(
            "optimizer='sgd'", "optimizer=opt").splitlines()) +
                 "\n    model.fit(x_train, y_train, epochs=1, validation_split=0.2)\n"
                 "    _, acc = model.evaluate(x_test, y_test)\n"
                 "    resultados.append({'opt': opt, 'modelo': model, 'test_acc': acc})"),
        ("code", "mejor = max(resultados, key=lambda r: r['test_acc'])\nprint('Mejor modelo:', mejor['opt'])"),
    ])


if __name__ == "__main__":
    main()
