"""Ejercicio 1: unidades de activación, sigmoide frente a ReLU."""
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
