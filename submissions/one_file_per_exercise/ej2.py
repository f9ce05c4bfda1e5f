"""Ejercicio 2: inicialización de parámetros con ReLU."""
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
