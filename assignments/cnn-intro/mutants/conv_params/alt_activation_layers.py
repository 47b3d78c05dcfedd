# kind: alternative
# why: activations as layers of their own (Conv2D, then ReLU; Dense, then Activation softmax)
def build_cnn(input_shape=(28, 28, 1), num_classes=10, filters=(16, 32), kernel_size=3,
              strides=1, padding="valid", dilation_rate=1, pooling="max", dense_units=64):
    model = keras.Sequential([keras.Input(shape=input_shape)])
    for f in filters:
        model.add(layers.Conv2D(f, kernel_size, strides=strides, padding=padding,
                                dilation_rate=dilation_rate))
        model.add(layers.ReLU())
        if pooling == "max":
            model.add(layers.MaxPooling2D(2))
        elif pooling == "avg":
            model.add(layers.AveragePooling2D(2))
    model.add(layers.Flatten())
    if dense_units:
        model.add(layers.Dense(dense_units))
        model.add(layers.Activation("relu"))
    model.add(layers.Dense(num_classes))
    model.add(layers.Activation("softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
