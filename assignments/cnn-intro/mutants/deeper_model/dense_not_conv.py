# kind: mistake
# why: adds Dense layers instead of convolutions
def build_deeper_cnn(input_shape=(28, 28, 1), num_classes=10):
    model = keras.Sequential([keras.Input(shape=input_shape)])
    model.add(layers.Conv2D(16, 3, padding="same", activation="relu"))
    model.add(layers.MaxPooling2D(2))
    model.add(layers.Conv2D(32, 3, padding="same", activation="relu"))
    model.add(layers.MaxPooling2D(2))
    model.add(layers.Flatten())
    model.add(layers.Dense(64, activation="relu"))
    model.add(layers.Dense(64, activation="relu"))
    model.add(layers.Reshape((8, 8, 1)))
    model.add(layers.Flatten())
    model.add(layers.Dense(num_classes, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
