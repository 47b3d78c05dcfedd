# kind: alternative
# why: Sequential built in a loop: five Conv2D + BatchNormalization blocks
def build_deeper_cnn(input_shape=(28, 28, 1), num_classes=10):
    model = keras.Sequential()
    model.add(keras.Input(shape=input_shape))
    for i, filters in enumerate((16, 16, 32, 32, 64)):
        model.add(keras.layers.Conv2D(filters, (3, 3), padding="same"))
        model.add(keras.layers.BatchNormalization())
        model.add(keras.layers.ReLU())
        if i in (1, 3):
            model.add(keras.layers.MaxPooling2D())
    model.add(keras.layers.GlobalAveragePooling2D())
    model.add(keras.layers.Dense(num_classes, activation="softmax"))
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy",
                  metrics=["sparse_categorical_accuracy"])
    return model
