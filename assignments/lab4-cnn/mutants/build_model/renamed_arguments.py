# kind: mistake
# why: renames the parameters (shape, classes), so build_model(input_shape=..., num_classes=...) fails
def build_model(shape=(28, 28, 1), classes=10):
    model = keras.Sequential(
        [
            keras.Input(shape=shape),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
