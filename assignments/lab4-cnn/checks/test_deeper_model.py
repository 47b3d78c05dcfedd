"""build_deeper_model(input_shape=(28, 28, 1), num_classes=10): more Conv2D layers."""

import _reference as ref
import pytest

from autograder.checks import expect
from autograder.exceptions import BridgeError

pytestmark = pytest.mark.question("deeper_model")

# build_model must have at least 2 Conv2D layers, so a deeper model has at least 3,
# whatever state the student's build_model is in.
MIN_DEEPER = 3


@pytest.fixture(scope="module")
def deeper_model(submission):
    return submission.call_model("build_deeper_model")


@pytest.mark.points(2)
def test_default_arguments(deeper_model, rng):
    """build_deeper_model() classifies 28x28x1 images with a softmax over 10 classes."""
    ref.check_classifier(deeper_model, (28, 28, 1), 10, rng, "build_deeper_model()", softmax=True)


@pytest.mark.points(2)
def test_arguments_used(submission, rng):
    model = submission.call_model("build_deeper_model", (32, 32, 3), 7)
    what = "build_deeper_model((32, 32, 3), 7)"
    ref.check_classifier(model, (32, 32, 3), 7, rng, what, softmax=True)


@pytest.mark.points(3)
def test_more_conv_layers_than_build_model(submission, deeper_model, record_property):
    """Deeper means more Conv2D layers one after another on the way from input to output
    (`_reference.conv2d_depth`); one on a parallel branch does not count."""
    deeper = ref.conv2d_depth(deeper_model)
    try:
        base = ref.conv2d_depth(submission.call_model("build_model"))
        against = f"build_model() has {base}"
    except BridgeError:
        base = MIN_DEEPER - 1
        against = "build_model() could not be inspected, so at least 3 are needed"
        record_property("note", "build_model() failed; compared against 2 Conv2D layers")
    needed = max(base + 1, MIN_DEEPER)
    expect(
        deeper >= needed,
        f"build_deeper_model(): the model has {deeper} Conv2D layer(s) one after another "
        f"from input to output and {against}; a deeper model needs at least {needed} in a "
        "row (a Conv2D on a parallel branch does not make it deeper)",
    )


@pytest.mark.points(1)
def test_pooling_layer(deeper_model):
    """The same rules as build_model: at least one pooling layer."""
    n = ref.count_pooling(deeper_model)
    expect(n >= 1, "build_deeper_model(): the model has no pooling layer (e.g. MaxPooling2D)")


@pytest.mark.points(1)
def test_parameter_budget(deeper_model, assignment):
    """The same rules as build_model: fewer parameters than the budget. build_model's is
    charged in the accuracy question, which trains it; nothing trains this one."""
    budget = assignment.accuracy.max_params  # [accuracy] max_params in assignment.toml
    params = deeper_model.count_params()
    expect(
        params < budget,
        f"build_deeper_model(): the model has {params:,} parameters; the budget is fewer "
        f"than {budget:,} (the same rule as build_model)",
    )


@pytest.mark.points(1)
def test_compiled(deeper_model):
    problem = ref.compile_problem(deeper_model, "build_deeper_model()")
    expect(problem is None, problem or "")
