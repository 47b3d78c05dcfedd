# kind: alternative
# why: Sequential with 'same' convolutions, average pooling, global pooling and a separate Softmax layer, compiled with metrics=["acc"]
def build_model(input_shape=(28, 28, 1), num_classes=10):
    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            keras.layers.Conv2D(8, (3, 3), padding="same", activation="relu"),
            keras.layers.AveragePooling2D(pool_size=2),
            keras.layers.Conv2D(16, (3, 3), padding="same", activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(num_classes),
            keras.layers.Softmax(),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["acc"])
    return model
