"""Cell sources of the Keras 3 sample notebooks: one correct hand-in and its faulty variants.

Each variant is the correct notebook with a few targeted edits (`_edit` fails loudly when the text
to change is missing, so the variants cannot silently drift from the base).
"""

from __future__ import annotations

Cells = list[tuple[str, str]]

TITLE = """# Trabajo 2: Aspectos prácticos de las redes neuronales

En este segundo trabajo, vamos a continuar desarrollando el problema de Fashion MNIST, con el objetivo de entender los aspectos prácticos del entrenamiento de redes neuronales.

El código utilizado para contestar tiene que quedar claramente reflejado en el Notebook. Puedes crear nuevas celdas si así lo deseas para estructurar tu código y sus salidas. A la hora de entregar el notebook, **asegúrate de que los resultados de ejecutar tu código han quedado guardados**."""

IMPORTS = """# Imports que vas a necesitar
import keras
from keras.datasets import fashion_mnist
from keras.models import Sequential
from keras.layers import Input, Flatten, Dense, Dropout
from keras.optimizers import SGD, Adam, RMSprop
from keras.callbacks import EarlyStopping
import tensorflow as tf
import numpy as np
import matplotlib.pyplot as plt

# Fijo la semilla para que los resultados sean repetibles
keras.utils.set_random_seed(42)
print("Keras", keras.__version__)"""

LOAD = """(x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()

x_train = x_train / 255.0
x_test = x_test / 255.0

print("Train:", x_train.shape, y_train.shape)
print("Test: ", x_test.shape, y_test.shape)"""

CONSIDERATIONS = """## Consideraciones iniciales

### Train-validación-test

En **todos** los entrenamientos de este trabajo se usará un 20% de los datos de entrenamiento (`x_train`) como conjunto de validación, por ejemplo con `validation_split=0.2` en `fit`. El conjunto de test queda reservado hasta el final: elegir modelos según su resultado en test es hacer trampa.

### Un error común con modelos de Keras

Cada nuevo entrenamiento tiene que partir de un modelo NUEVO (volver a ejecutar `model = Sequential(...)`). Si se vuelve a llamar a `fit()` sobre el mismo objeto, el entrenamiento continúa desde donde se quedó.

### Análisis de resultados

Cada ejercicio debe acompañarse de conclusiones escritas apoyadas en gráficas. Las salidas tienen que quedar guardadas en el notebook."""

HELPERS_MD = "Funciones auxiliares para dibujar las gráficas (las del enunciado, con los nombres de métricas de Keras actual) y una mía para comparar más de dos entrenamientos:"

HELPERS = '''def plot_acc(history, title="Model Accuracy"):
    """Imprime una gráfica mostrando la accuracy por epoch obtenida en un entrenamiento"""
    plt.plot(history.history['accuracy'])
    plt.plot(history.history['val_accuracy'])
    plt.title(title)
    plt.ylabel('Accuracy')
    plt.xlabel('Epoch')
    plt.legend(['Train', 'Val'], loc='upper left')
    plt.show()


def plot_loss(history, title="Model Loss"):
    """Imprime una gráfica mostrando la pérdida por epoch obtenida en un entrenamiento"""
    plt.plot(history.history['loss'])
    plt.plot(history.history['val_loss'])
    plt.title(title)
    plt.ylabel('Loss')
    plt.xlabel('Epoch')
    plt.legend(['Train', 'Val'], loc='upper right')
    plt.show()


def plot_compare_losses(history1, history2, name1="Red 1",
                        name2="Red 2", title="Graph title"):
    """Compara losses de dos entrenamientos con nombres name1 y name2"""
    plt.plot(history1.history['loss'], color="green")
    plt.plot(history1.history['val_loss'], '--', color="green")
    plt.plot(history2.history['loss'], color="blue")
    plt.plot(history2.history['val_loss'], '--', color="blue")
    plt.title(title)
    plt.ylabel('Loss')
    plt.xlabel('Epoch')
    plt.legend(['Train ' + name1, 'Val ' + name1,
                'Train ' + name2, 'Val ' + name2],
               loc='upper right')
    plt.show()


def plot_compare_accs(history1, history2, name1="Red 1",
                      name2="Red 2", title="Graph title"):
    """Compara accuracies de dos entrenamientos con nombres name1 y name2"""
    plt.plot(history1.history['accuracy'], color="green")
    plt.plot(history1.history['val_accuracy'], '--', color="green")
    plt.plot(history2.history['accuracy'], color="blue")
    plt.plot(history2.history['val_accuracy'], '--', color="blue")
    plt.title(title)
    plt.ylabel('Accuracy')
    plt.xlabel('Epoch')
    plt.legend(['Train ' + name1, 'Val ' + name1,
                'Train ' + name2, 'Val ' + name2],
               loc='lower right')
    plt.show()


def plot_compare_val(historias, metrica='val_accuracy', title=''):
    """(Mía) Dibuja una métrica de validación de varios entrenamientos a la vez"""
    for nombre, h in historias.items():
        plt.plot(h.history[metrica], marker='o', label=nombre)
    plt.title(title)
    plt.ylabel(metrica)
    plt.xlabel('Epoch')
    plt.legend()
    plt.show()'''

EX1_MD = """## 1. Unidades de activación

En este ejercicio vamos a evaluar la importancia de una correcta selección de las unidades de activación. Para ello compararemos la sigmoide, que históricamente fue la más usada, con la ReLU.

**Ejercicio 1 *(2.5 puntos)***: Partiendo de una red sencilla como punto de partida (como pista, 3-4 capas densas), compara los resultados (velocidad de convergencia y métricas) de usar unidades sigmoide frente a ReLU en las capas ocultas, y explica a qué se deben las diferencias."""

BUILDER_MD = """Para no caer en el error de reentrenar el mismo objeto, defino una función `crear_modelo` que construye una red NUEVA cada vez que se llama, y otra `entrenar` que compila y entrena siempre igual (validación = 20% de `x_train`). Para que las comparaciones sean rápidas uso 3 épocas y batch de 128."""

BUILDER = '''EPOCHS = 3
BATCH_SIZE = 128


def crear_modelo(activacion='relu', inicializador='glorot_uniform'):
    """Construye una red densa nueva: 784 -> 256 -> 128 -> 10"""
    modelo = Sequential([
        Input(shape=(28, 28)),
        Flatten(),
        Dense(256, activation=activacion, kernel_initializer=inicializador),
        Dense(128, activation=activacion, kernel_initializer=inicializador),
        Dense(10, activation='softmax', kernel_initializer=inicializador),
    ])
    return modelo


def entrenar(modelo, optimizador='adam'):
    """Compila y entrena el modelo que recibe; devuelve el history"""
    modelo.compile(optimizer=optimizador,
                   loss='sparse_categorical_crossentropy',
                   metrics=['accuracy'])
    history = modelo.fit(x_train, y_train,
                         epochs=EPOCHS, batch_size=BATCH_SIZE,
                         validation_split=0.2, verbose=2)
    return history'''

EX1_SIGMOID = """modelo_sigmoid = crear_modelo(activacion='sigmoid')
modelo_sigmoid.summary()
history_sigmoid = entrenar(modelo_sigmoid)"""

EX1_RELU = """modelo_relu = crear_modelo(activacion='relu')
history_relu = entrenar(modelo_relu)"""

EX1_PLOTS = """plot_compare_accs(history_sigmoid, history_relu, name1='sigmoide', name2='ReLU',
                  title='Sigmoide vs ReLU: accuracy')
plot_compare_losses(history_sigmoid, history_relu, name1='sigmoide', name2='ReLU',
                    title='Sigmoide vs ReLU: loss')"""

EX1_ANALYSIS = """### Análisis del ejercicio 1

Con la misma arquitectura, el mismo optimizador (Adam) y las mismas 3 épocas, la red con ReLU converge más rápido que la red con sigmoide: desde la primera época tiene menor pérdida y mayor accuracy, tanto en entrenamiento como en validación, y termina por encima en validación.

La diferencia se explica por la derivada de cada activación. La sigmoide se **satura**: para entradas grandes en valor absoluto su salida se queda pegada a 0 o a 1 y su derivada es casi cero (como mucho vale 0.25). Al propagar el error hacia atrás el gradiente se multiplica por estas derivadas en cada capa, así que llega muy pequeño a las primeras capas (**desvanecimiento del gradiente**) y estas aprenden despacio. La ReLU tiene derivada 1 en la parte positiva, no se satura, y el gradiente llega a todas las capas sin encogerse, por eso la velocidad de convergencia es mayor. Con una red más profunda la diferencia sería aún más grande. A partir de aquí uso ReLU."""

EX2_MD = """## 2. Inicialización de parámetros

En este ejercicio vamos a evaluar la importancia de una correcta inicialización de parámetros en una red neuronal.

**Ejercicio 2 *(2.5 puntos)***: Partiendo de una red similar a la del ejercicio anterior (usando ya ReLUs), comenta las diferencias que se aprecian en el entrenamiento al utilizar distintas estrategias de inicialización de parámetros. Para ello, inicializa todas las capas con las siguientes estrategias:
* (a) Todos los pesos a cero.
* (b) Una variable aleatoria con distribución normal.
* (c) Los valores por defecto de Keras para una capa densa (glorot uniform)."""

EX2_CODE = """inicializaciones = [('ceros', 'zeros'),
                    ('normal', 'random_normal'),   # N(0, 0.05)
                    ('glorot_uniform', 'glorot_uniform')]

historias_init = {}
for nombre, inicializador in inicializaciones:
    print('Inicialización:', nombre)
    modelo = crear_modelo(activacion='relu', inicializador=inicializador)
    historias_init[nombre] = entrenar(modelo)"""

EX2_PLOTS = """plot_compare_val(historias_init, 'val_accuracy', 'Inicialización: accuracy de validación')
plot_compare_val(historias_init, 'val_loss', 'Inicialización: pérdida de validación')
for nombre, h in historias_init.items():
    print(f"{nombre:15s} val_accuracy final = {h.history['val_accuracy'][-1]:.4f}")"""

EX2_ANALYSIS = """### Análisis del ejercicio 2

* **Ceros**: la red no aprende nada, la accuracy de validación se queda en torno al 10% (azar con 10 clases) y la pérdida en ln(10) ≈ 2.30. Con todos los pesos iguales todas las neuronas de una capa calculan lo mismo y reciben el mismo gradiente, así que nunca se diferencian: no se consigue **romper la simetría**. Además con ReLU la salida de las capas ocultas es 0 y su gradiente también, de modo que solo se ajustan los sesgos de la salida.
* **Normal** (media 0, desviación 0.05): los pesos aleatorios rompen la simetría y la red aprende sin problema, con resultados parecidos a los de Glorot.
* **Glorot uniforme** (la de Keras por defecto): escala la varianza de los pesos según el número de entradas y salidas de cada capa, para que la señal y el gradiente mantengan su magnitud de capa en capa. Es la que converge mejor o igual que la normal, y es la que uso en los siguientes ejercicios.

Conclusión: lo imprescindible es que la inicialización sea aleatoria, y que la escala sea adecuada para que la red no empiece saturada ni con gradientes muy pequeños."""

EX3_MD = """## 3. Optimizadores

**Ejercicio 3 *(2.5 puntos)***: Partiendo de la red de los ejercicios anteriores (ReLU e inicialización glorot), compara el comportamiento de distintos optimizadores, incluyendo SGD. Para los optimizadores adaptativos se pueden usar los parámetros por defecto."""

EX3_SGD = """modelo_sgd = crear_modelo()
history_sgd = entrenar(modelo_sgd, SGD(learning_rate=0.01))"""

EX3_ADAM = """modelo_adam = crear_modelo()
history_adam = entrenar(modelo_adam, Adam(learning_rate=0.001))"""

EX3_RMS = """modelo_rms = crear_modelo()
history_rms = entrenar(modelo_rms, RMSprop(learning_rate=0.001))"""

EX3_PLOTS = """historias_opt = {'SGD': history_sgd, 'Adam': history_adam, 'RMSprop': history_rms}
plot_compare_val(historias_opt, 'val_loss', 'Optimizadores: pérdida de validación')
plot_compare_val(historias_opt, 'val_accuracy', 'Optimizadores: accuracy de validación')
for nombre, h in historias_opt.items():
    print(f"{nombre:8s} val_accuracy por época: {np.round(h.history['val_accuracy'], 4)}")"""

EX3_ANALYSIS = """### Análisis del ejercicio 3

SGD con learning rate 0.01 es claramente el más lento: en 3 épocas queda bastante por debajo de los otros dos en accuracy de validación y su pérdida baja despacio, porque da pasos del mismo tamaño en todas las direcciones y con ese learning rate avanza poco. Adam y RMSprop adaptan el paso de cada parámetro según la magnitud de sus gradientes recientes, por eso su **velocidad de convergencia** es mucho mayor: con la primera época ya superan lo que SGD consigue al final. Entre Adam y RMSprop la diferencia es pequeña; me quedo con Adam para la red final porque su curva de validación es la más estable."""

EX4_MD = """## 4. Regularización y red final

**Ejercicio 4.1 *(2.5 puntos)***: Entrena una red final que sea capaz de obtener una accuracy en el conjunto de validación cercana al 90%. Para ello, combina todo lo aprendido anteriormente y utiliza técnicas de regularización para evitar overfitting (dropout, regularización L1/L2, early stopping, batch normalization...). Explica la estrategia seguida.

**Estrategia**: parto de lo mejor de los ejercicios anteriores (ReLU, inicialización glorot y Adam) y hago la red más ancha (512 y 256 neuronas) para tener más capacidad. Una red así sobreajusta enseguida, así que añado **Dropout** de 0.2 después de cada capa oculta y **EarlyStopping** sobre `val_loss` con paciencia 5 y `restore_best_weights=True`, para quedarme con los pesos de la mejor época de validación en lugar de los de la última. Bajo el batch a 64 (más actualizaciones por época) y pongo un máximo de 20 épocas."""

EX4_CODE = """modelo_final = Sequential([
    Input(shape=(28, 28)),
    Flatten(),
    Dense(512, activation='relu'),
    Dropout(0.2),
    Dense(256, activation='relu'),
    Dropout(0.2),
    Dense(10, activation='softmax'),
])
modelo_final.compile(optimizer=Adam(learning_rate=0.001),
                     loss='sparse_categorical_crossentropy',
                     metrics=['accuracy'])

parada_temprana = EarlyStopping(monitor='val_loss', patience=5,
                                restore_best_weights=True)

history_final = modelo_final.fit(x_train, y_train,
                                 epochs=20, batch_size=64,
                                 validation_split=0.2,
                                 callbacks=[parada_temprana],
                                 verbose=2)"""

EX4_PLOTS = """plot_acc(history_final, 'Red final: accuracy')
plot_loss(history_final, 'Red final: pérdida')

mejor = int(np.argmin(history_final.history['val_loss']))
print(f"Épocas entrenadas: {len(history_final.history['loss'])}")
print(f"Mejor época (mínima val_loss): {mejor + 1}")
print(f"val_accuracy en la mejor época: {history_final.history['val_accuracy'][mejor]:.4f}")
print(f"val_accuracy máxima: {max(history_final.history['val_accuracy']):.4f}")"""

EX4_ANALYSIS = """### Análisis del ejercicio 4.1

La red final llega a una accuracy de validación de en torno al 89-90%, que era el objetivo. Las curvas muestran que gracias al Dropout la accuracy de entrenamiento y la de validación van muy juntas durante casi todo el entrenamiento: sin regularización la red de 512-256 neuronas empieza a **sobreajustar** a las pocas épocas (la pérdida de entrenamiento sigue bajando mientras la de validación sube). El EarlyStopping corta el entrenamiento cuando la pérdida de validación deja de mejorar y recupera los pesos de la mejor época, así que no hace falta adivinar el número de épocas."""

EX42_MD = """### Pregunta 4.2

*Utiliza tu mejor modelo para predecir el conjunto de test y reporta su accuracy. Evalúa el modelo una única vez en test y comenta la diferencia entre el resultado en validación y en test.*"""

EX42_CODE = """test_loss, test_acc = modelo_final.evaluate(x_test, y_test, verbose=0)
print(f"Test loss:     {test_loss:.4f}")
print(f"Test accuracy: {test_acc:.4f}")"""

EX42_ANALYSIS = """### Análisis de la pregunta 4.2

La accuracy en test es algo menor que la de validación (alrededor de un punto). Es lo esperable: todas las decisiones (arquitectura, dropout, optimizador, época de parada) se han tomado mirando el conjunto de validación, así que su resultado es una estimación un poco optimista. El conjunto de test no se ha usado para nada hasta ahora, por eso su resultado es la estimación honesta de cómo funcionará el modelo con datos nuevos. La diferencia entre validación y test es pequeña, lo que indica que no hemos sobreajustado a la validación."""


def correct_cells() -> Cells:
    """The fully correct hand-in: every fit on a new model with validation_split=0.2."""
    return [
        ("md", TITLE), ("code", IMPORTS), ("code", LOAD), ("md", CONSIDERATIONS),
        ("md", HELPERS_MD), ("code", HELPERS),
        ("md", EX1_MD), ("md", BUILDER_MD), ("code", BUILDER),
        ("code", EX1_SIGMOID), ("code", EX1_RELU), ("code", EX1_PLOTS), ("md", EX1_ANALYSIS),
        ("md", EX2_MD), ("code", EX2_CODE), ("code", EX2_PLOTS), ("md", EX2_ANALYSIS),
        ("md", EX3_MD), ("code", EX3_SGD), ("code", EX3_ADAM), ("code", EX3_RMS),
        ("code", EX3_PLOTS), ("md", EX3_ANALYSIS),
        ("md", EX4_MD), ("code", EX4_CODE), ("code", EX4_PLOTS), ("md", EX4_ANALYSIS),
        ("md", EX42_MD), ("code", EX42_CODE), ("md", EX42_ANALYSIS),
    ]


def _edit(cells: Cells, old: str, new: str, *, count: int = 1) -> Cells:
    """Replace `old` by `new` in exactly `count` cells; fail if the base text changed."""
    hits = [i for i, (_, src) in enumerate(cells) if old in src]
    if len(hits) != count:
        raise ValueError(f"expected {count} cell(s) containing {old!r}, found {len(hits)}")
    return [(kind, src.replace(old, new)) for kind, src in cells]


def _replace_cell(cells: Cells, old_source: str, new_cell: tuple[str, str]) -> Cells:
    index = [src for _, src in cells].index(old_source)
    return cells[:index] + [new_cell] + cells[index + 1:]


def _append_to_cell(cells: Cells, anchor: str, line: str) -> Cells:
    """Append `line` to the one cell containing `anchor`."""
    hits = [i for i, (_, src) in enumerate(cells) if anchor in src]
    if len(hits) != 1:
        raise ValueError(f"expected one cell containing {anchor!r}, found {len(hits)}")
    kind, src = cells[hits[0]]
    return cells[:hits[0]] + [(kind, f"{src}\n{line}")] + cells[hits[0] + 1:]


def _uses_test_as_validation(cells: Cells) -> Cells:
    cells = _edit(cells, "validation_split=0.2, verbose=2", "validation_data=(x_test, y_test), verbose=2")
    cells = _edit(cells, "validation_split=0.2,\n", "validation_data=(x_test, y_test),\n")
    cells = _edit(cells, "(validación = 20% de `x_train`)",
                  "(como validación uso directamente `x_test`, así entreno con las 60.000 imágenes)")
    return _replace_cell(cells, EX42_ANALYSIS, ("md", """### Análisis de la pregunta 4.2

La accuracy en test coincide con la de la mejor época de validación, porque he usado el conjunto de test como validación en todos los entrenamientos. Así me aseguro de que el modelo elegido por el EarlyStopping es el que mejor funciona en test, y no hay diferencia entre validación y test."""))


def _refits_same_model(cells: Cells) -> Cells:
    # The classic mistake: one model object, fit() called again for each optimizer.
    cells = _edit(cells, "modelo_sgd = crear_modelo()\nhistory_sgd = entrenar(modelo_sgd,",
                  "modelo = crear_modelo()\nhistory_sgd = entrenar(modelo,")
    cells = _edit(cells, "modelo_adam = crear_modelo()\nhistory_adam = entrenar(modelo_adam,",
                  "history_adam = entrenar(modelo,")
    cells = _edit(cells, "modelo_rms = crear_modelo()\nhistory_rms = entrenar(modelo_rms,",
                  "history_rms = entrenar(modelo,")
    return _replace_cell(cells, EX3_ANALYSIS, ("md", """### Análisis del ejercicio 3

SGD es el más lento de los tres: empieza con una accuracy de validación baja y va subiendo poco a poco. Adam ya desde la primera época está por encima de lo que SGD consigue al final, y RMSprop es el que converge más rápido de todos: desde su primera época tiene la accuracy de validación más alta y la pérdida de validación más baja de los tres, aunque al final Adam lo alcanza. Los optimizadores adaptativos tienen una **velocidad de convergencia** mucho mayor porque ajustan el paso de cada parámetro. Para la red final uso Adam, que es el más habitual y da resultados casi iguales a RMSprop."""))


def _no_saved_outputs(cells: Cells) -> Cells:
    # Another course edition: retitled template; the code is the correct one.
    return _edit(cells, "# Trabajo 2: Aspectos prácticos de las redes neuronales",
                 "# Segunda práctica: Aspectos prácticos de las redes neuronales")


def _uniform_labelled_as_normal(cells: Cells) -> Cells:
    cells = _edit(cells, "('normal', 'random_normal'),   # N(0, 0.05)", "('normal', 'random_uniform'),")
    return _edit(cells, "**Normal** (media 0, desviación 0.05)", "**Normal** (pesos aleatorios pequeños)")


def _prose_in_code_cell(cells: Cells) -> Cells:
    # The analysis pasted into a code cell: its first line is a comment, the rest is a SyntaxError.
    return _replace_cell(cells, EX1_ANALYSIS, ("code", EX1_ANALYSIS))


def _missing_import(cells: Cells) -> Cells:
    return _edit(cells, "from keras.optimizers import SGD, Adam, RMSprop", "from keras.optimizers import SGD, Adam")


def _tests_on_test_each_time(cells: Cells) -> Cells:
    cells = _edit(cells, "# Imports que vas a necesitar\n", "%matplotlib inline\n# Imports que vas a necesitar\n")
    cells = _edit(cells, "        Input(shape=(28, 28)),\n        Flatten(),\n", "        Flatten(input_shape=(28, 28)),\n")
    cells = _edit(cells, "    Input(shape=(28, 28)),\n    Flatten(),\n", "    Flatten(input_shape=(28, 28)),\n")
    for model, label in [("modelo_sigmoid", "sigmoide"), ("modelo_relu", "ReLU"), ("modelo_sgd", "SGD"),
                         ("modelo_adam", "Adam"), ("modelo_rms", "RMSprop")]:
        cells = _append_to_cell(cells, f"entrenar({model}",
                                f"print('Test ({label}):', {model}.evaluate(x_test, y_test, verbose=0))")
    cells = _edit(cells, "    historias_init[nombre] = entrenar(modelo)",
                  "    historias_init[nombre] = entrenar(modelo)\n"
                  "    print('  test:', modelo.evaluate(x_test, y_test, verbose=0))")
    cells = _edit(cells, "                                 verbose=2)",
                  "                                 verbose=2)\n"
                  "print('Test:', modelo_final.evaluate(x_test, y_test, verbose=0))")
    cells = _edit(cells, "A partir de aquí uso ReLU.",
                  "En test se ve lo mismo: la ReLU también tiene mejor accuracy. A partir de aquí uso ReLU.")
    return _edit(cells, "me quedo con Adam para la red final porque su curva de validación es la más estable.",
                 "me quedo con Adam para la red final porque es el que mejor accuracy tiene en test.")


def notebook_variants() -> dict[str, Cells]:
    """Cell sources of every Keras 3 notebook sample, keyed by sample name."""
    base = correct_cells()
    return {
        "correct_full": base,
        "uses_test_as_validation": _uses_test_as_validation(base),
        "refits_same_model": _refits_same_model(base),
        "no_saved_outputs": _no_saved_outputs(base),
        "uniform_labelled_as_normal": _uniform_labelled_as_normal(base),
        "prose_in_code_cell": _prose_in_code_cell(base),
        "missing_import": _missing_import(base),
        "tests_on_test_each_time": _tests_on_test_each_time(base),
    }
