"""build_deeper_cnn(input_shape=(28, 28, 1), num_classes=10): four Conv2D in a row or more.

Depth counts Conv2D layers one after another on the path from input to output
(`autograder.model_checks.conv2d_depth`): one on a parallel branch does not count. The
parameter budget is charged in the `accuracy` question only.
"""

import pytest

from autograder.checks import expect
from autograder.model_checks import check_classifier, compile_problem, conv2d_depth

pytestmark = pytest.mark.question("deeper_model")

MIN_DEPTH = 4


@pytest.fixture(scope="module")
def deeper(submission):
    return submission.call_model("build_deeper_cnn")


@pytest.mark.points(3)
def test_default_arguments(deeper, rng):
    check_classifier(deeper, (28, 28, 1), 10, rng, "build_deeper_cnn()", softmax=True)


@pytest.mark.points(2)
def test_arguments_used(submission, rng):
    model = submission.call_model("build_deeper_cnn", (32, 32, 3), 7)
    check_classifier(model, (32, 32, 3), 7, rng, "build_deeper_cnn((32, 32, 3), 7)", softmax=True)


@pytest.mark.points(4)
def test_four_conv_layers_in_a_row(deeper):
    depth = conv2d_depth(deeper)
    expect(
        depth >= MIN_DEPTH,
        f"build_deeper_cnn(): the longest chain of Conv2D layers from input to output has "
        f"{depth}; at least {MIN_DEPTH} in a row are needed (a Conv2D on a parallel branch "
        "does not make the model deeper)",
    )


@pytest.mark.points(1)
def test_compiled(deeper):
    problem = compile_problem(deeper, "build_deeper_cnn()")
    expect(problem is None, problem or "")
