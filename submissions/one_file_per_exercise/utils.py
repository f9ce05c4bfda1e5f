"""Trabajo 2 - funciones comunes a todos los ejercicios (datos y construcción de modelos)."""
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
