# kind: alternative
# why: compiles with Keras's loss and metric functions instead of their names
def build_cnn(input_shape=(28, 28, 1), num_classes=10, filters=(16, 32), kernel_size=3,
              strides=1, padding="valid", dilation_rate=1, pooling="max", dense_units=64):
    stack = [keras.Input(shape=input_shape)]
    for f in filters:
        stack.append(layers.Conv2D(f, kernel_size, strides, padding,
                                   dilation_rate=dilation_rate, activation="relu"))
        if pooling == "max":
            stack.append(layers.MaxPooling2D())
        if pooling == "avg":
            stack.append(layers.AveragePooling2D(2))
    stack.append(layers.Flatten())
    if dense_units:
        stack.append(layers.Dense(dense_units, "relu"))
    stack.append(layers.Dense(num_classes, "softmax"))
    model = keras.Sequential(stack)
    model.compile(
        optimizer="adam",
        loss=keras.losses.sparse_categorical_crossentropy,
        metrics=[keras.metrics.sparse_categorical_accuracy],
    )
    return model
