# kind: mistake
# why: four Conv2D layers, but two parallel branches of two: only two in a row
def build_deeper_cnn(input_shape=(28, 28, 1), num_classes=10):
    inputs = keras.Input(shape=input_shape)
    a = layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    a = layers.Conv2D(16, 3, padding="same", activation="relu")(a)
    b = layers.Conv2D(16, 5, padding="same", activation="relu")(inputs)
    b = layers.Conv2D(16, 5, padding="same", activation="relu")(b)
    x = layers.Concatenate()([a, b])
    x = layers.MaxPooling2D(4)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
