"""Ejercicio 3: optimizadores (ReLU + glorot)."""
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
