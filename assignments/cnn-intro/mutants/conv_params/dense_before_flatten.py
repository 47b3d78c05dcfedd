# kind: mistake
# why: the hidden Dense layer comes before Flatten, so it runs on every pixel of the feature maps
def build_cnn(input_shape=(28, 28, 1), num_classes=10, filters=(16, 32), kernel_size=3,
              strides=1, padding="valid", dilation_rate=1, pooling="max", dense_units=64):
    model = keras.Sequential([keras.Input(shape=input_shape)])
    for f in filters:
        model.add(layers.Conv2D(f, kernel_size, strides=strides, padding=padding,
                                dilation_rate=dilation_rate, activation="relu"))
        if pooling == "max":
            model.add(layers.MaxPooling2D(2))
        elif pooling == "avg":
            model.add(layers.AveragePooling2D(2))
    if dense_units:
        model.add(layers.Dense(dense_units, activation="relu"))
    model.add(layers.Flatten())
    model.add(layers.Dense(num_classes, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model
