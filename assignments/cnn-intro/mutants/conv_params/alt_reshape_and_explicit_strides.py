# kind: alternative
# why: Reshape((-1,)) instead of Flatten, pooling strides and padding spelled out as the defaults
def build_cnn(input_shape=(28, 28, 1), num_classes=10, filters=(16, 32), kernel_size=3,
              strides=1, padding="valid", dilation_rate=1, pooling="max", dense_units=64):
    model = keras.Sequential([keras.Input(shape=input_shape)])
    for f in filters:
        model.add(layers.Conv2D(f, kernel_size, strides=strides, padding=padding,
                                dilation_rate=dilation_rate, activation="relu"))
        if pooling is not None:
            pool = layers.MaxPooling2D if pooling == "max" else layers.AveragePooling2D
            model.add(pool(pool_size=(2, 2), strides=(2, 2), padding="valid"))
    model.add(layers.Reshape((-1,)))
    if dense_units:
        model.add(layers.Dense(dense_units, activation="relu"))
    model.add(layers.Dense(num_classes, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model
