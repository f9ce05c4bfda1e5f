# -*- coding: utf-8 -*-
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
