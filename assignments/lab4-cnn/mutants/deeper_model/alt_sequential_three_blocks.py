# kind: alternative
# why: Sequential built in a loop, three Conv2D + BatchNormalization blocks and global average pooling
def build_deeper_model(input_shape=(28, 28, 1), num_classes=10):
    model = keras.Sequential()
    model.add(keras.Input(shape=input_shape))
    for filters in (8, 16, 32):
        model.add(keras.layers.Conv2D(filters, (3, 3), padding="same"))
        model.add(keras.layers.BatchNormalization())
        model.add(keras.layers.Activation("relu"))
        model.add(keras.layers.MaxPooling2D((2, 2)))
    model.add(keras.layers.GlobalAveragePooling2D())
    model.add(keras.layers.Dense(num_classes, activation="softmax"))
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy",
                  metrics=["sparse_categorical_accuracy"])
    return model
