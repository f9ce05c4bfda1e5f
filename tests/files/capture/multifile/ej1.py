import numpy as np
from keras.datasets import fashion_mnist

from utils import build_model, train

(x_train, y_train), _ = fashion_mnist.load_data()
x = x_train[:1000].reshape(-1, 784).astype("float32") / 255
model = build_model(16)
history = train(model, x, y_train[:1000])
print(len(history.history["loss"]))
