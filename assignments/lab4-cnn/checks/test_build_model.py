"""build_model(input_shape=(28, 28, 1), num_classes=10): a small Keras CNN.

The model comes back loaded in the grader with safe_mode=True; everything below
inspects or runs that copy, never the student's objects.

The parameter budget (fewer than 300,000, `[accuracy] max_params`) is charged once, in
the `accuracy` question, not here: the budget exists so that the accuracy thresholds
compare like with like, and the grader refuses to train a model over it (0 of the
accuracy points, with a message naming the count and the limit). Charging it here too
would take points twice for one mistake.
"""

import _reference as ref
import pytest

from autograder.checks import expect

pytestmark = pytest.mark.question("build_model")


@pytest.fixture(scope="module")
def default_model(submission):
    return submission.call_model("build_model")


@pytest.mark.points(2)
def test_default_arguments(submission, default_model, rng):
    """build_model() classifies 28x28x1 images into 10 classes."""
    ref.check_classifier(default_model, (28, 28, 1), 10, rng, "build_model()", softmax=False)


@pytest.mark.points(2)
def test_two_conv_layers(default_model):
    n = ref.count_conv2d(default_model)
    expect(n >= 2, f"build_model(): the model has {n} Conv2D layer(s), expected at least 2")


@pytest.mark.points(2)
def test_pooling_layer(default_model):
    n = ref.count_pooling(default_model)
    expect(n >= 1, "build_model(): the model has no pooling layer (e.g. MaxPooling2D)")


@pytest.mark.points(2)
def test_softmax_output(default_model, rng):
    """The outputs are probabilities: non-negative, summing to 1 over the classes."""
    x = rng.normal(size=(4, 28, 28, 1)).astype("float32")
    y, error = ref.forward(default_model, x)
    expect(error is None, f"build_model(): the model fails on 28x28x1 images ({error})")
    expect(y.ndim == 2, f"build_model(): the output has shape {y.shape}, expected (batch, 10)")
    sums = y.sum(axis=1)
    expect(
        bool((y >= -1e-6).all() and abs(sums - 1).max() < 1e-3),
        "build_model(): the outputs for a batch of images are not probabilities (row sums "
        f"{[round(float(s), 3) for s in sums]}); end with a softmax over the classes",
    )


@pytest.mark.points(2)
def test_arguments_used(submission, rng):
    """input_shape and num_classes are honoured, by position and by keyword.

    The shape is not square and has 3 channels, so neither height and width nor the
    channels can be taken one for the other. Both calls run; when they build the same
    architecture they are one model (`call_model`), checked once.
    """
    shape, classes = (36, 30, 3), 5
    model = submission.call_model("build_model", shape, classes)
    ref.check_classifier(model, shape, classes, rng, "build_model((36, 30, 3), 5)", softmax=False)
    by_keyword = submission.call_model("build_model", input_shape=shape, num_classes=classes)
    if by_keyword is not model:
        what = "build_model(input_shape=(36, 30, 3), num_classes=5)"
        ref.check_classifier(by_keyword, shape, classes, rng, what, softmax=False)


@pytest.mark.points(1)
def test_compiled(default_model):
    """Compiled with adam, sparse categorical cross-entropy and accuracy, as the notebook asks."""
    problem = ref.compile_problem(default_model, "build_model()")
    expect(problem is None, problem or "")
