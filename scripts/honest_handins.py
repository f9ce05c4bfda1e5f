"""Four honest "Trabajo 2" solutions written independently of each other, for the similarity tests.

The sample hand-ins in submissions/ all come from one author's script (scripts/sample_content.py):
they share crear_modelo(), entrenar() and the final network verbatim, so no pair of them is an honest
pair of distinct students. These four are: each keeps the course template (imports, data loading,
plot_* helpers, as students receive it) and solves the four exercises in its own style, as real
students do: a functional-API helper with loops (A), models written out with .add() cell by cell (B),
a manual 80/20 split with a timing helper and flattened inputs (C), an experiment registry with its
own plots (D). They share Keras idioms (compile/fit calls, Dense layers), not code.
No saved outputs: they were never run (the similarity of outputs is tested with the executed samples).
"""

from __future__ import annotations

from scripts.sample_content import HELPERS

_IMPORTS = """import keras
from keras.datasets import fashion_mnist
from keras.models import Sequential
from keras.layers import Dense, Dropout
import tensorflow as tf
import numpy as np
import matplotlib.pyplot as plt{extra}"""

_DATA = """(x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()

x_train = x_train / 255.0
x_test = x_test / 255.0"""

# The template's four helpers as the course hands them out (the samples' copy, without the sample
# author's own plot_compare_val, which is not template code).
_PLOTS = HELPERS[:HELPERS.index("def plot_compare_val")].rstrip()


def _template(extra_imports: str = "", acc: str = "accuracy") -> list[tuple[str, str]]:
    return [
        ("markdown", "# Trabajo 2: Aspectos prácticos de las redes neuronales"),
        ("code", _IMPORTS.format(extra=extra_imports)),
        ("code", _DATA),
        ("markdown", "## Consideraciones iniciales\n\nEl 20% de `x_train` es siempre la validación."),
        ("code", _PLOTS if acc == "accuracy" else _PLOTS.replace("'accuracy'", f"'{acc}'")
                                                           .replace("'val_accuracy'", f"'val_{acc}'")),
    ]


def _heading(n: int) -> tuple[str, str]:
    return ("markdown", {1: "## 1. Unidades de activación", 2: "## 2. Inicialización de parámetros",
                         3: "## 3. Optimizadores", 4: "## 4. Regularización y red final"}[n])


STYLE_A = _template("\nfrom tensorflow.keras import layers, regularizers") + [
    _heading(1),
    ("code", '''def red_densa(act, init="glorot_uniform", capas=(300, 100)):
    entrada = keras.Input(shape=(28, 28))
    x = layers.Flatten()(entrada)
    for n in capas:
        x = layers.Dense(n, activation=act, kernel_initializer=init)(x)
    salida = layers.Dense(10, activation="softmax")(x)
    return keras.Model(entrada, salida)


resultados = {}
for act in ["sigmoid", "relu", "tanh"]:
    red = red_densa(act)
    red.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    resultados[act] = red.fit(x_train, y_train, epochs=10, batch_size=32,
                              validation_split=0.2, verbose=0)
    print(act, max(resultados[act].history["val_accuracy"]))'''),
    ("code", '''plot_compare_accs(resultados["sigmoid"], resultados["relu"], "sigmoide", "relu", "Ej. 1")
plot_compare_losses(resultados["sigmoid"], resultados["relu"], "sigmoide", "relu", "Ej. 1")'''),
    ("markdown", "Con SGD la sigmoide apenas avanza: se satura y el gradiente se desvanece."),
    _heading(2),
    ("code", '''inits = {
    "ceros": keras.initializers.Zeros(),
    "normal": keras.initializers.RandomNormal(stddev=0.05),
    "defecto": "glorot_uniform",
}
res_init = {}
for nombre, ini in inits.items():
    red = red_densa("relu", init=ini)
    red.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    res_init[nombre] = red.fit(x_train, y_train, epochs=10, batch_size=32,
                               validation_split=0.2, verbose=0)
for nombre, h in res_init.items():
    plot_acc(h, "Inicialización " + nombre)'''),
    ("markdown", "Con ceros no se rompe la simetría y la red no aprende."),
    _heading(3),
    ("code", '''opts = [keras.optimizers.SGD(learning_rate=0.05, momentum=0.9), keras.optimizers.Adam(),
        keras.optimizers.RMSprop(), keras.optimizers.Adagrad()]
curvas = []
for opt in opts:
    red = red_densa("relu")
    red.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    curvas.append(red.fit(x_train, y_train, epochs=10, batch_size=32,
                          validation_split=0.2, verbose=0))
plt.figure(figsize=(8, 5))
for opt, h in zip(opts, curvas):
    plt.plot(h.history["val_loss"], label=opt.__class__.__name__)
plt.legend()
plt.title("Optimizadores: val_loss")
plt.show()'''),
    ("markdown", "Adam y RMSprop convergen antes; SGD con momento se acerca."),
    _heading(4),
    ("code", '''final = keras.Sequential([
    layers.Flatten(input_shape=(28, 28)),
    layers.Dense(400, activation="relu", kernel_regularizer=regularizers.l2(1e-4)),
    layers.Dropout(0.3),
    layers.Dense(200, activation="relu", kernel_regularizer=regularizers.l2(1e-4)),
    layers.Dropout(0.3),
    layers.Dense(10, activation="softmax"),
])
final.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
hist_final = final.fit(x_train, y_train, epochs=40, batch_size=128, validation_split=0.2,
                       callbacks=[keras.callbacks.EarlyStopping(patience=4, restore_best_weights=True)])
plot_acc(hist_final)
plot_loss(hist_final)'''),
    ("code", '''perdida, acierto = final.evaluate(x_test, y_test)
print("Test:", acierto)'''),
    ("markdown", "En test sale algo menos que en validación, como era de esperar."),
]

_B_MODEL = """{m} = Sequential()
{m}.add(keras.layers.Flatten(input_shape=(28, 28)))
{m}.add(Dense(128, activation='{act}'{init}))
{m}.add(Dense(64, activation='{act}'{init}))
{m}.add(Dense(32, activation='{act}'{init}))
{m}.add(Dense(10, activation='softmax'))
{m}.compile(optimizer={opt}, loss='sparse_categorical_crossentropy', metrics=['acc'])
{h} = {m}.fit(x_train, y_train, epochs=5, validation_split=0.2)"""


def _b(m: str, h: str, act: str = "relu", init: str = "", opt: str = "'adam'") -> tuple[str, str]:
    return ("code", _B_MODEL.format(m=m, h=h, act=act, init=init, opt=opt))


STYLE_B = _template(acc="acc") + [
    _heading(1),
    _b("model", "history", act="sigmoid"),
    _b("model2", "history2"),
    ("code", "plot_compare_accs(history, history2, 'sigmoid', 'relu')\n"
             "plot_compare_losses(history, history2, 'sigmoid', 'relu')"),
    ("markdown", "la relu va mejor porque la sigmoide se satura"),
    _heading(2),
    _b("model3", "history3", init=", kernel_initializer='zeros'"),
    _b("model4", "history4", init=", kernel_initializer=keras.initializers.RandomNormal(mean=0.0, stddev=0.05)"),
    _b("model5", "history5"),
    ("code", "plot_compare_accs(history3, history4, 'zeros', 'normal')\n"
             "plot_compare_accs(history4, history5, 'normal', 'glorot')"),
    ("markdown", "con ceros no aprende nada (10%), las otras dos parecido"),
    _heading(3),
    _b("model6", "history6", opt="'sgd'"),
    _b("model7", "history7", opt="'rmsprop'"),
    ("code", "plot_compare_losses(history6, history5, 'sgd', 'adam')\n"
             "plot_compare_losses(history7, history5, 'rmsprop', 'adam')"),
    ("markdown", "sgd es el mas lento"),
    _heading(4),
    ("code", """from keras.layers import BatchNormalization
from keras.callbacks import EarlyStopping

modelo_final = Sequential()
modelo_final.add(keras.layers.Flatten(input_shape=(28, 28)))
modelo_final.add(Dense(256, activation='relu'))
modelo_final.add(BatchNormalization())
modelo_final.add(Dropout(0.25))
modelo_final.add(Dense(128, activation='relu'))
modelo_final.add(Dropout(0.25))
modelo_final.add(Dense(10, activation='softmax'))
modelo_final.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['acc'])
es = EarlyStopping(monitor='val_acc', patience=3)
historia_final = modelo_final.fit(x_train, y_train, epochs=30, validation_split=0.2, callbacks=[es])"""),
    ("code", "plot_acc(historia_final)\nplot_loss(historia_final)"),
    ("code", "modelo_final.evaluate(x_test, y_test)"),
    ("markdown", "llega a casi un 89% en validacion y un poco menos en test"),
]

STYLE_C = _template("\nimport time") + [
    ("markdown", "Separo yo la validación: las últimas 12000 imágenes de entrenamiento (20%)."),
    ("code", '''x_tr, x_val = x_train[:48000].reshape(-1, 784), x_train[48000:].reshape(-1, 784)
y_tr, y_val = y_train[:48000], y_train[48000:]
x_te = x_test.reshape(-1, 784)


def entrena(ocultas, activacion, inicial='glorot_uniform', optim='adam', epocas=8):
    red = Sequential()
    red.add(Dense(ocultas[0], activation=activacion, kernel_initializer=inicial, input_shape=(784,)))
    for unidades in ocultas[1:]:
        red.add(Dense(unidades, activation=activacion, kernel_initializer=inicial))
    red.add(Dense(10, activation='softmax', kernel_initializer=inicial))
    red.compile(optimizer=optim, loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    t0 = time.time()
    h = red.fit(x_tr, y_tr, validation_data=(x_val, y_val), epochs=epocas, batch_size=64, verbose=0)
    print(f'{activacion} {inicial} {optim}: {time.time() - t0:.1f} s, val_acc={h.history["val_accuracy"][-1]:.4f}')
    return red, h'''),
    _heading(1),
    ("code", "_, h_sig = entrena([256, 128, 64], 'sigmoid')\n_, h_relu = entrena([256, 128, 64], 'relu')\n"
             "plot_compare_accs(h_sig, h_relu, 'Sigmoide', 'ReLU', 'Activaciones')"),
    ("markdown", "ReLU converge más rápido (la sigmoide tiene derivada máxima 0.25)."),
    _heading(2),
    ("code", '''historial = {}
for ini in ['zeros', 'random_normal', 'glorot_uniform']:
    historial[ini] = entrena([256, 128, 64], 'relu', ini)[1]
fig, ejes = plt.subplots(1, 3, figsize=(15, 4), sharey=True)
for eje, (ini, h) in zip(ejes, historial.items()):
    eje.plot(h.history['accuracy'], label='train')
    eje.plot(h.history['val_accuracy'], label='val')
    eje.set_title(ini)
    eje.legend()
plt.show()'''),
    ("markdown", "Ceros: todas las neuronas iguales. Normal y Glorot aprenden."),
    _heading(3),
    ("code", '''por_optimizador = {o: entrena([256, 128, 64], 'relu', optim=o)[1]
                   for o in ['sgd', 'adam', 'rmsprop', 'nadam']}
for o, h in por_optimizador.items():
    plt.plot(h.history['val_loss'], marker='.', label=o)
plt.legend()
plt.show()'''),
    ("markdown", "Nadam y Adam son los mejores aquí."),
    _heading(4),
    ("code", '''from keras.layers import BatchNormalization
from keras.callbacks import EarlyStopping, ReduceLROnPlateau

mejor = Sequential([
    Dense(512, input_shape=(784,), kernel_regularizer=keras.regularizers.l1_l2(l1=1e-6, l2=1e-5)),
    BatchNormalization(),
    keras.layers.Activation('relu'),
    Dropout(0.4),
    Dense(128, activation='relu'),
    Dropout(0.2),
    Dense(10, activation='softmax'),
])
mejor.compile(optimizer=keras.optimizers.Nadam(), loss='sparse_categorical_crossentropy', metrics=['accuracy'])
cb = [ReduceLROnPlateau(factor=0.5, patience=2), EarlyStopping(patience=6, restore_best_weights=True)]
t0 = time.time()
h_mejor = mejor.fit(x_tr, y_tr, validation_data=(x_val, y_val), epochs=60, batch_size=64, callbacks=cb)
print('tiempo', round(time.time() - t0), 's; mejor val_acc', max(h_mejor.history['val_accuracy']))'''),
    ("code", "print('test acc', mejor.evaluate(x_te, y_test, verbose=0)[1])"),
    ("markdown", "La diferencia validación-test es pequeña."),
]

STYLE_D = _template() + [
    ("code", '''REGISTRO = []


def construir(activation="relu", initializer="glorot_uniform", dropout=0.0, units=(512, 256, 128)):
    capas = [keras.layers.Flatten(input_shape=(28, 28))]
    for u in units:
        capas.append(keras.layers.Dense(u, activation=activation, kernel_initializer=initializer))
        if dropout:
            capas.append(keras.layers.Dropout(dropout))
    capas.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(capas)


def experimento(nombre, optimizer="adam", epochs=6, callbacks=None, **arquitectura):
    modelo = construir(**arquitectura)
    modelo.compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"])
    h = modelo.fit(x_train, y_train, batch_size=256, epochs=epochs, validation_split=0.2,
                   callbacks=callbacks or [], verbose=2)
    REGISTRO.append((nombre, h))
    return modelo, h


def dibuja(nombres, metrica="val_accuracy"):
    fig, ax = plt.subplots(1, 2, figsize=(12, 4))
    for nombre, h in REGISTRO:
        if nombre in nombres:
            ax[0].plot(h.history[metrica], label=nombre)
            ax[1].plot(h.history["val_loss"], label=nombre)
    ax[0].legend()
    ax[1].legend()
    plt.show()'''),
    _heading(1),
    ("code", 'experimento("sigmoide", activation="sigmoid")\nexperimento("relu")\ndibuja(["sigmoide", "relu"])'),
    ("markdown", "La sigmoide aprende más despacio: saturación."),
    _heading(2),
    ("code", '''for nombre, ini in [("cero", "zeros"), ("normal", keras.initializers.RandomNormal(0.0, 0.05)),
                    ("glorot", "glorot_uniform")]:
    experimento(nombre, initializer=ini)
dibuja(["cero", "normal", "glorot"])'''),
    ("markdown", "Inicializar a cero no sirve."),
    _heading(3),
    ("code", '''experimento("SGD", optimizer=keras.optimizers.SGD(0.01))
experimento("SGD+momento", optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
experimento("Adam", optimizer="adam")
experimento("RMSprop", optimizer="rmsprop")
dibuja(["SGD", "SGD+momento", "Adam", "RMSprop"], "val_loss")'''),
    ("markdown", "Adam gana."),
    _heading(4),
    ("code", '''parar = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=6, restore_best_weights=True)
final, h_final = experimento("final", optimizer=keras.optimizers.Adam(5e-4), epochs=50, dropout=0.3,
                             units=(512, 256), callbacks=[parar])
dibuja(["final"])
print("val_accuracy máxima:", max(h_final.history["val_accuracy"]))'''),
    ("code", 'print(dict(zip(["loss", "accuracy"], final.evaluate(x_test, y_test, verbose=0))))'),
    ("markdown", "Test algo por debajo de validación."),
]

HONEST = {"estilo_a": STYLE_A, "estilo_b": STYLE_B, "estilo_c": STYLE_C, "estilo_d": STYLE_D}
