# kind: mistake
# why: pooling windows of 2x2 that move by 1 pixel: the maps barely shrink
def build_cnn(input_shape=(28, 28, 1), num_classes=10, filters=(16, 32), kernel_size=3,
              strides=1, padding="valid", dilation_rate=1, pooling="max", dense_units=64):
    model = keras.Sequential([keras.Input(shape=input_shape)])
    for f in filters:
        model.add(layers.Conv2D(f, kernel_size, strides=strides, padding=padding,
                                dilation_rate=dilation_rate, activation="relu"))
        if pooling == "max":
            model.add(layers.MaxPooling2D(pool_size=(2, 2), strides=(1, 1)))
        elif pooling == "avg":
            model.add(layers.AveragePooling2D(pool_size=(2, 2), strides=(1, 1)))
    model.add(layers.Flatten())
    if dense_units:
        model.add(layers.Dense(dense_units, activation="relu"))
    model.add(layers.Dense(num_classes, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model
