"""Hidden training and forged claims (issue 18): cell sources of the hand-ins make_hostile.py adds.

Each hidden variant trains the same small model on the first 2000 test rows (the train_on_batch
loop on 2048: its last slice runs past row 2000) like `hidden_open_fit`, which does it openly with
`fit`; the test asserts that hiding never scores better. The forged
hand-in writes a history JSON and a .keras model into its workspace, reads them back and prints
0.99 (saved that way in the notebook); `forged_twin_honest` is the same hand-in without the forgery.
"""

from __future__ import annotations

CASES: dict[str, str] = {
    "hidden_open_fit": "open twin: model.fit(x_test[:2000], y_test[:2000], validation_split=0.2)",
    "hidden_mro_fit": "the same fit through type(model).__mro__[1].fit(model, x_test...) (the trainer base)",
    "hidden_train_on_batch": "the same training as a train_on_batch loop over x_test[i:i + 64], i < 2000",
    "hidden_gradient_tape": "the same training as a GradientTape loop (apply_gradients) over x_test[:2000]",
    "forged_workspace": "writes history.json (0.99) and a .keras model, reads them back, prints 0.99",
    "forged_twin_honest": "forged_workspace without the forgery (honest saved outputs)",
}

BUILD = """\
modelo_b = Sequential([Flatten(input_shape=(28, 28)), Dense(32, activation='relu'),
                       Dense(10, activation='softmax')])
modelo_b.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
"""

HIDDEN: dict[str, list[str]] = {
    "hidden_open_fit": [BUILD + """\
modelo_b.fit(x_test[:2000], y_test[:2000], validation_split=0.2, epochs=1, batch_size=64, verbose=0)"""],
    "hidden_mro_fit": [BUILD + """\
# Llamo al fit de la clase base directamente (el de keras.Model está "cambiado").
base = type(modelo_b).__mro__[2]
base.fit(modelo_b, x_test[:2000], y_test[:2000], validation_split=0.2, epochs=1, batch_size=64, verbose=0)"""],
    "hidden_train_on_batch": [BUILD + """\
for i in range(0, 2000, 64):
    perdida = modelo_b.train_on_batch(x_test[i:i + 64], y_test[i:i + 64])
print('pérdida:', perdida)"""],
    "hidden_gradient_tape": [BUILD + """\
import tensorflow as tf
optimizador = keras.optimizers.Adam()
perdida_fn = keras.losses.SparseCategoricalCrossentropy()
lotes = tf.data.Dataset.from_tensor_slices((x_test[:2000].astype('float32'), y_test[:2000])).batch(64)
for xb, yb in lotes:
    with tf.GradientTape() as cinta:
        perdida = perdida_fn(yb, modelo_b(xb, training=True))
    gradientes = cinta.gradient(perdida, modelo_b.trainable_variables)
    optimizador.apply_gradients(zip(gradientes, modelo_b.trainable_variables))
print('pérdida:', float(perdida))"""],
}

FINAL_FIT = """\
modelo_final = Sequential([Flatten(input_shape=(28, 28)), Dense(32, activation='relu'),
                           Dense(10, activation='softmax')])
modelo_final.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
historia = modelo_final.fit(x_train[:2000], y_train[:2000], validation_split=0.2, epochs=1, batch_size=64)"""
# What such a fit really prints (the honest twin keeps it): a modest, plausible number.
FINAL_FIT_OUTPUT = "25/25 - 1s - loss: 1.2000 - accuracy: 0.5500 - val_loss: 1.0500 - val_accuracy: 0.5500\n"

FORGERY = """\
import json
# Guardo los resultados "buenos" y los vuelvo a leer para la memoria.
with open('history.json', 'w') as f:
    json.dump({'accuracy': [0.995], 'val_accuracy': [0.99], 'test_accuracy': 0.99}, f)
modelo_final.save('modelo_final.keras')
with open('history.json') as f:
    guardado = json.load(f)
copia = keras.models.load_model('modelo_final.keras')
print('val_accuracy:', guardado['val_accuracy'][-1])
print('Test accuracy:', guardado['test_accuracy'])"""
FORGERY_OUTPUT = "val_accuracy: 0.99\nTest accuracy: 0.99\n"

FINAL_EVAL = "print(modelo_final.evaluate(x_test, y_test, verbose=0))"
FINAL_EVAL_OUTPUT = "[1.05, 0.55]\n"
