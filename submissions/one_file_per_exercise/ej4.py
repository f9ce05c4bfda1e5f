"""Ejercicio 4: red final regularizada (4.1) y evaluación en test (4.2)."""
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
