import keras


def build_model(units):
    model = keras.Sequential([keras.Input(shape=(784,)),
                              keras.layers.Dense(units, activation="sigmoid"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train(model, x, y):
    return model.fit(x, y, epochs=1, validation_split=0.2, verbose=0)
