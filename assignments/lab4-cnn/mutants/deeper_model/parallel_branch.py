# kind: mistake
# why: the extra Conv2D is on a parallel branch (concatenated), so the model is wider, not deeper
def build_deeper_model(input_shape=(28, 28, 1), num_classes=10):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    a = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    b = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.Concatenate()([a, b])
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
