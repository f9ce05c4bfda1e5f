"""Sources of the plain-Python samples: one script for everything, and one file per exercise.

Both are correct hand-ins written outside Jupyter (no saved outputs exist for them); the analysis is in
docstrings and comments, as students who work in an editor write it. The comparison configs are the
ones of the notebook samples (256-128 dense net, batch 128, 3 epochs) so retraining can share a cache.
"""

from __future__ import annotations

# Plain script without cell markers: the student wrote it in an editor and ran `python trabajo2.py`.
SINGLE_SCRIPT = '''# -*- coding: utf-8 -*-
"""
Trabajo 2: Aspectos prácticos de las redes neuronales (Fashion MNIST)

Lo he hecho como script porque trabajo con VS Code; se ejecuta con `python trabajo2.py`
y va imprimiendo los resultados de cada ejercicio. En todos los entrenamientos uso el 20%
de x_train como validación (validation_split=0.2) y construyo un modelo nuevo para cada
entrenamiento con la función crear_modelo().

ANÁLISIS DE RESULTADOS (resultados de mi ejecución, ver los print del final de cada ejercicio)

Ejercicio 1 (sigmoide vs ReLU): la ReLU converge más rápido. Desde la primera época la red
con ReLU tiene menos pérdida y más accuracy de validación. La sigmoide se satura (derivada
casi cero para entradas grandes, como mucho 0.25) y al multiplicar derivadas pequeñas capa a
capa el gradiente se hace muy pequeño: desvanecimiento del gradiente. La ReLU tiene derivada 1
en la parte positiva y no sufre este problema.

Ejercicio 2 (inicialización con ReLU): con todos los pesos a cero la red no aprende (se queda
en un 10% de accuracy, que es azar): todas las neuronas son iguales y reciben el mismo gradiente,
no se rompe la simetría, y con ReLU además el gradiente de las capas ocultas es cero. Con una
normal aleatoria (media 0, desviación 0.05) y con glorot uniforme (la de Keras por defecto) la red
aprende bien; glorot ajusta la escala al número de entradas y salidas de cada capa y es la que uso.

Ejercicio 3 (optimizadores): SGD con lr=0.01 es el más lento; Adam y RMSprop convergen mucho más
rápido porque adaptan el paso de cada parámetro. Me quedo con Adam.

Ejercicio 4.1 (red final): 512-256 neuronas ReLU con Dropout 0.2 para evitar el sobreajuste, Adam,
batch 64 y EarlyStopping sobre val_loss (paciencia 5, restore_best_weights=True). Llega a
una accuracy de validación de alrededor del 89%.

Pregunta 4.2: evalúo el modelo final en test UNA sola vez al final del script. La accuracy en test
sale algo menor que en validación, porque todas las decisiones se han tomado mirando validación y
por eso esa estimación es un poco optimista; la de test es la estimación honesta.
"""
import numpy as np
import keras
from keras.datasets import fashion_mnist
from keras.models import Sequential
from keras.layers import Input, Flatten, Dense, Dropout
from keras.optimizers import SGD, Adam, RMSprop
from keras.callbacks import EarlyStopping

EPOCHS = 3
BATCH_SIZE = 128

(x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
x_train = x_train / 255.0
x_test = x_test / 255.0


def crear_modelo(activacion='relu', inicializador='glorot_uniform'):
    # Red nueva en cada llamada (784 -> 256 -> 128 -> 10)
    return Sequential([
        Input(shape=(28, 28)),
        Flatten(),
        Dense(256, activation=activacion, kernel_initializer=inicializador),
        Dense(128, activation=activacion, kernel_initializer=inicializador),
        Dense(10, activation='softmax', kernel_initializer=inicializador),
    ])


def entrenar(modelo, optimizador='adam'):
    modelo.compile(optimizer=optimizador, loss='sparse_categorical_crossentropy',
                   metrics=['accuracy'])
    return modelo.fit(x_train, y_train, epochs=EPOCHS, batch_size=BATCH_SIZE,
                      validation_split=0.2, verbose=2)


def resumen(nombre, history):
    print(f"{nombre:15s} val_loss={history.history['val_loss'][-1]:.4f} "
          f"val_accuracy={history.history['val_accuracy'][-1]:.4f}")


# ---------------------------------------------------------------------------
# Ejercicio 1: unidades de activación (sigmoide vs ReLU)
# ---------------------------------------------------------------------------
print("=== Ejercicio 1 ===")
historias_act = {}
for activacion in ['sigmoid', 'relu']:
    historias_act[activacion] = entrenar(crear_modelo(activacion=activacion))
for nombre, h in historias_act.items():
    resumen(nombre, h)

# ---------------------------------------------------------------------------
# Ejercicio 2: inicialización (ReLU): ceros, normal aleatoria, glorot uniforme
# ---------------------------------------------------------------------------
print("=== Ejercicio 2 ===")
historias_init = {}
for nombre, inicializador in [('ceros', 'zeros'), ('normal', 'random_normal'),
                              ('glorot_uniform', 'glorot_uniform')]:
    historias_init[nombre] = entrenar(crear_modelo('relu', inicializador))
for nombre, h in historias_init.items():
    resumen(nombre, h)

# ---------------------------------------------------------------------------
# Ejercicio 3: optimizadores (con ReLU + glorot)
# ---------------------------------------------------------------------------
print("=== Ejercicio 3 ===")
historias_opt = {
    'SGD': entrenar(crear_modelo(), SGD(learning_rate=0.01)),
    'Adam': entrenar(crear_modelo(), Adam(learning_rate=0.001)),
    'RMSprop': entrenar(crear_modelo(), RMSprop(learning_rate=0.001)),
}
for nombre, h in historias_opt.items():
    resumen(nombre, h)

# ---------------------------------------------------------------------------
# Ejercicio 4.1: red final regularizada
# ---------------------------------------------------------------------------
print("=== Ejercicio 4.1 ===")
modelo_final = Sequential([
    Input(shape=(28, 28)),
    Flatten(),
    Dense(512, activation='relu'),
    Dropout(0.2),
    Dense(256, activation='relu'),
    Dropout(0.2),
    Dense(10, activation='softmax'),
])
modelo_final.compile(optimizer=Adam(learning_rate=0.001),
                     loss='sparse_categorical_crossentropy', metrics=['accuracy'])
parada = EarlyStopping(monitor='val_loss', patience=5, restore_best_weights=True)
history_final = modelo_final.fit(x_train, y_train, epochs=20, batch_size=64,
                                 validation_split=0.2, callbacks=[parada], verbose=2)
mejor = int(np.argmin(history_final.history['val_loss']))
print(f"Mejor época: {mejor + 1}, val_accuracy = {history_final.history['val_accuracy'][mejor]:.4f}")

# ---------------------------------------------------------------------------
# Pregunta 4.2: evaluación en test (una sola vez)
# ---------------------------------------------------------------------------
print("=== Pregunta 4.2 ===")
test_loss, test_acc = modelo_final.evaluate(x_test, y_test, verbose=0)
print(f"Test: loss={test_loss:.4f} accuracy={test_acc:.4f}")
'''

UTILS = '''"""Trabajo 2 - funciones comunes a todos los ejercicios (datos y construcción de modelos)."""
from keras.datasets import fashion_mnist
from keras.models import Sequential
from keras.layers import Input, Flatten, Dense

EPOCHS = 3
BATCH_SIZE = 128


def cargar_datos():
    """Fashion MNIST normalizado a [0, 1]."""
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    return (x_train / 255.0, y_train), (x_test / 255.0, y_test)


def crear_modelo(activacion='relu', inicializador='glorot_uniform'):
    """Crea SIEMPRE un modelo nuevo (784 -> 256 -> 128 -> 10) para no reentrenar el mismo."""
    return Sequential([
        Input(shape=(28, 28)),
        Flatten(),
        Dense(256, activation=activacion, kernel_initializer=inicializador),
        Dense(128, activation=activacion, kernel_initializer=inicializador),
        Dense(10, activation='softmax', kernel_initializer=inicializador),
    ])


def entrenar(modelo, x_train, y_train, optimizador='adam'):
    """Compila y entrena con el 20% de x_train como validación."""
    modelo.compile(optimizer=optimizador, loss='sparse_categorical_crossentropy',
                   metrics=['accuracy'])
    return modelo.fit(x_train, y_train, epochs=EPOCHS, batch_size=BATCH_SIZE,
                      validation_split=0.2, verbose=2)
'''

EJ1 = '''"""Ejercicio 1: unidades de activación, sigmoide frente a ReLU."""
from utils import cargar_datos, crear_modelo, entrenar

(x_train, y_train), _ = cargar_datos()

history_sigmoid = entrenar(crear_modelo('sigmoid'), x_train, y_train)
history_relu = entrenar(crear_modelo('relu'), x_train, y_train)

for nombre, h in [('sigmoide', history_sigmoid), ('relu', history_relu)]:
    print(nombre, 'val_accuracy por época:', [round(v, 4) for v in h.history['val_accuracy']])

# Análisis:
# La red con ReLU converge bastante más rápido que la de sigmoide: en la primera época ya
# tiene mejor accuracy de validación y menor pérdida. La sigmoide se satura (su derivada es
# como mucho 0.25 y casi cero en los extremos), y al retropropagar el gradiente se va
# multiplicando por esas derivadas y se hace muy pequeño en las primeras capas
# (desvanecimiento del gradiente). La ReLU tiene derivada 1 para entradas positivas.
'''

EJ2 = '''"""Ejercicio 2: inicialización de parámetros con ReLU."""
from utils import cargar_datos, crear_modelo, entrenar

(x_train, y_train), _ = cargar_datos()

resultados = {}
for nombre, inicializador in [('ceros', 'zeros'),
                              ('normal', 'random_normal'),
                              ('glorot', 'glorot_uniform')]:
    h = entrenar(crear_modelo('relu', inicializador), x_train, y_train)
    resultados[nombre] = h.history['val_accuracy'][-1]

for nombre, acc in resultados.items():
    print(f'{nombre}: val_accuracy = {acc:.4f}')

# Análisis:
# - Ceros: no aprende (~10% de accuracy). Todas las neuronas de una capa son idénticas y
#   reciben el mismo gradiente, así que no se rompe la simetría; con ReLU además la salida
#   y el gradiente de las capas ocultas son cero.
# - Normal (media 0, desviación 0.05): rompe la simetría y aprende bien.
# - Glorot uniforme (por defecto en Keras): escala los pesos según fan_in y fan_out y es la
#   que mejor o igual funciona; la uso en el resto de ejercicios.
'''

EJ3 = '''"""Ejercicio 3: optimizadores (ReLU + glorot)."""
from keras.optimizers import SGD, Adam, RMSprop
from utils import cargar_datos, crear_modelo, entrenar

(x_train, y_train), _ = cargar_datos()

optimizadores = {
    'SGD': SGD(learning_rate=0.01),
    'Adam': Adam(learning_rate=0.001),
    'RMSprop': RMSprop(learning_rate=0.001),
}
for nombre, optimizador in optimizadores.items():
    h = entrenar(crear_modelo(), x_train, y_train, optimizador)
    print(nombre, 'val_loss:', [round(v, 4) for v in h.history['val_loss']])

# Análisis:
# SGD (lr=0.01) es el que converge más despacio; Adam y RMSprop adaptan el tamaño del paso
# de cada peso y en la primera época ya están por encima de lo que SGD consigue en tres.
# La velocidad de convergencia de los adaptativos es mucho mayor. Elijo Adam.
'''

EJ4 = '''"""Ejercicio 4: red final regularizada (4.1) y evaluación en test (4.2)."""
import numpy as np
from keras.models import Sequential
from keras.layers import Input, Flatten, Dense, Dropout
from keras.optimizers import Adam
from keras.callbacks import EarlyStopping
from utils import cargar_datos

(x_train, y_train), (x_test, y_test) = cargar_datos()

# 4.1 Estrategia: ReLU + glorot + Adam (lo mejor de los ejercicios anteriores), red más ancha
# y Dropout para frenar el sobreajuste; EarlyStopping sobre val_loss recuperando la mejor época.
modelo = Sequential([
    Input(shape=(28, 28)),
    Flatten(),
    Dense(512, activation='relu'),
    Dropout(0.2),
    Dense(256, activation='relu'),
    Dropout(0.2),
    Dense(10, activation='softmax'),
])
modelo.compile(optimizer=Adam(learning_rate=0.001), loss='sparse_categorical_crossentropy',
               metrics=['accuracy'])
parada = EarlyStopping(monitor='val_loss', patience=5, restore_best_weights=True)
history = modelo.fit(x_train, y_train, epochs=20, batch_size=64, validation_split=0.2,
                     callbacks=[parada], verbose=2)
mejor = int(np.argmin(history.history['val_loss']))
print('Mejor época:', mejor + 1, 'val_accuracy:', round(history.history['val_accuracy'][mejor], 4))

# 4.2 Evaluación en test, una única vez y con el modelo ya elegido
test_loss, test_acc = modelo.evaluate(x_test, y_test, verbose=0)
print('Test accuracy:', round(test_acc, 4))

# Análisis 4.2: la accuracy de test sale algo por debajo de la de validación. Es normal:
# la validación se ha usado para elegir arquitectura, dropout y época de parada, así que su
# estimación es algo optimista; la de test (datos nunca vistos) es la honesta. La diferencia
# es pequeña, así que no hay un sobreajuste importante a la validación.
'''


def single_script_source() -> str:
    return SINGLE_SCRIPT


def one_file_per_exercise_files() -> dict[str, str]:
    return {"utils.py": UTILS, "ej1.py": EJ1, "ej2.py": EJ2, "ej3.py": EJ3, "ej4.py": EJ4}
