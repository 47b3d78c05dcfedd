"""The accuracy question's reference architecture (trusted; never sent to a kernel).

`[accuracy] reference` in assignment.toml names this file: four Conv2D layers in a row,
as `build_deeper_cnn` must have. Conv32-Conv32-MaxPool-Conv64-Conv64-MaxPool-Dropout-
Dense64: 266,410 parameters on Fashion-MNIST, within the question's 300,000.
"""

from __future__ import annotations


def build_reference(input_shape=(28, 28, 1), num_classes=10):
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.3),
            layers.Dense(64, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="cnn_intro_reference",
    )
