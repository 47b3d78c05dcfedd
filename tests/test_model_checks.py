"""autograder.model_checks on fake StudentModels (plain data, no Keras)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from autograder.checks import CheckFailure
from autograder.model_checks import (
    check_classifier,
    compile_problem,
    conv2d_depth,
    count_conv2d,
    count_pooling,
)


def layer(name, cls, inbound=(), path=None):
    return SimpleNamespace(name=name, class_name=cls, path=path or name, inbound=tuple(inbound))


def model(*layers, **fields):
    return SimpleNamespace(layers=list(layers), **fields)


def test_sequential_depth_counts_every_conv():
    m = model(*(layer(f"c{i}", "Conv2D") for i in range(3)), layer("p", "MaxPooling2D"))
    assert conv2d_depth(m) == 3 and count_conv2d(m) == 3 and count_pooling(m) == 1


def test_parallel_branches_count_once():
    m = model(
        layer("in", "InputLayer"),
        layer("a1", "Conv2D", ["in"]),
        layer("a2", "Conv2D", ["a1"]),
        layer("b1", "Conv2D", ["in"]),
        layer("b2", "Conv2D", ["b1"]),
        layer("cat", "Concatenate", ["a2", "b2"]),
        layer("out", "Dense", ["cat"]),
    )
    assert count_conv2d(m) == 4 and conv2d_depth(m) == 2


def test_nested_model_counts_its_deepest_path():
    m = model(
        layer("in", "InputLayer"),
        layer("block", "Functional", ["in"]),
        layer("x1", "Conv2D", ["in"], path="block/x1"),
        layer("x2", "Conv2D", ["x1"], path="block/x2"),
        layer("c", "Conv2D", ["block"]),
    )
    assert conv2d_depth(m) == 3


class FakeModel:
    def __init__(self, out, input_shape=(None, 4, 4, 1)):
        self.out, self.input_shape = out, input_shape

    def predict(self, x):
        return self.out(x)


def test_check_classifier_accepts_a_softmax_and_names_what_is_wrong():
    rng = np.random.default_rng(0)
    softmax = FakeModel(lambda x: np.full((len(x), 3), 1 / 3))
    check_classifier(softmax, (4, 4, 1), 3, rng, "f()", softmax=True)
    with pytest.raises(CheckFailure, match=r"expected \(3, 5\)"):
        check_classifier(softmax, (4, 4, 1), 5, rng, "f()", softmax=True)
    linear = FakeModel(lambda x: np.full((len(x), 3), 2.0))
    with pytest.raises(CheckFailure, match="softmax"):
        check_classifier(linear, (4, 4, 1), 3, rng, "f()", softmax=True)
    with pytest.raises(CheckFailure, match="input shape"):
        check_classifier(softmax, (8, 8, 3), 3, rng, "f()", softmax=True)


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({}, "not compiled"),
        (
            {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["acc"]},
            None,
        ),
        (
            {
                "optimizer": {"class_name": "Adam"},
                "loss": {"class_name": "SparseCategoricalCrossentropy", "config": {}},
                "metrics": ["sparse_categorical_accuracy"],
            },
            None,
        ),
        (  # keras.losses.sparse_categorical_crossentropy and a metric, passed as functions
            {
                "optimizer": "adam",
                "loss": {
                    "module": "builtins",
                    "class_name": "function",
                    "config": "sparse_categorical_crossentropy",
                    "registered_name": "function",
                },
                "metrics": [
                    {
                        "module": "builtins",
                        "class_name": "function",
                        "config": "sparse_categorical_accuracy",
                        "registered_name": "function",
                    }
                ],
            },
            None,
        ),
        (
            {
                "optimizer": "adam",
                "loss": {"module": "builtins", "class_name": "function", "config": "mse"},
                "metrics": ["accuracy"],
            },
            "sparse_categorical_crossentropy",
        ),
        ({"optimizer": "sgd", "loss": "sparse_categorical_crossentropy", "metrics": []}, "adam"),
        (
            {
                "optimizer": "adam",
                "loss": {
                    "class_name": "SparseCategoricalCrossentropy",
                    "config": {"from_logits": True},
                },
                "metrics": ["accuracy"],
            },
            "on probabilities",
        ),
    ],
)
def test_compile_problem(config, problem):
    found = compile_problem(SimpleNamespace(compile_config=config), "m()")
    assert (found is None) if problem is None else (problem in found)
