# kind: mistake
# why: a 1x1 Conv2D on a skip branch added back (Add) beside the main path: no longer chain of convolutions
def build_deeper_model(input_shape=(28, 28, 1), num_classes=10):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    main = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    side = keras.layers.Conv2D(16, 1, padding="same")(x)
    x = keras.layers.Add()([main, side])
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
