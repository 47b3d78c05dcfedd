"""The accuracy question's reference architecture (trusted; never sent to a kernel).

`[accuracy] reference` in assignment.toml names this file. The grader trains it with the
same recipe, seeds and budget as the students' models, on the same device
(autograder.reference), and grades each student's accuracy as a ratio of its accuracy.
Conv32-Conv32-MaxPool-Conv64-MaxPool-Dropout-Dense128: 234,282 parameters on
Fashion-MNIST, within the question's 300,000.
"""

from __future__ import annotations


def build_reference(input_shape=(28, 28, 1), num_classes=10):
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(32, 3, activation="relu"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(128, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="lab4_reference",
    )
