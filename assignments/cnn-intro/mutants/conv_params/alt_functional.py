# kind: alternative
# why: functional API, pooling layers from a dict, keyword arguments by name
def build_cnn(input_shape=(28, 28, 1), num_classes=10, filters=(16, 32), kernel_size=3,
              strides=1, padding="valid", dilation_rate=1, pooling="max", dense_units=64):
    pool_layer = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for n in filters:
        x = keras.layers.Conv2D(filters=n, kernel_size=kernel_size, strides=strides,
                                padding=padding, dilation_rate=dilation_rate,
                                activation="relu")(x)
        if pooling is not None:
            x = pool_layer[pooling](pool_size=(2, 2))(x)
    x = keras.layers.Flatten()(x)
    if dense_units > 0:
        x = keras.layers.Dense(dense_units, activation="relu")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    return model
