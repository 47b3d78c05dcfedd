"""build_cnn(input_shape, num_classes, filters, kernel_size, strides, padding,
dilation_rate, pooling, dense_units): every parameter reaches the right layer.

Each call's model comes back as plain data (autograder.model_host.StudentModel); its
layers' configs are compared with what the arguments ask (`_reference`), and it is run
on a small batch in the capped model host.
"""

import _cnn_reference as ref
import pytest

from autograder.checks import expect
from autograder.model_checks import check_classifier, compile_problem

pytestmark = pytest.mark.question("conv_params")


def build(submission, **call):
    return submission.call_model("build_cnn", **call)


@pytest.mark.points(4)
def test_default_model(submission, rng):
    model = build(submission)
    check_classifier(model, (28, 28, 1), 10, rng, "build_cnn()", softmax=True)
    ref.expect_convs(model, {})
    ref.expect_pooling(model, {})
    ref.expect_dense(model, {})


@pytest.mark.points(4)
def test_filters_and_classes(submission, rng):
    call = {"input_shape": (32, 32, 1), "num_classes": 5, "filters": (8, 16, 24)}
    model = build(submission, **call)
    check_classifier(model, (32, 32, 1), 5, rng, ref.describe(call), softmax=True)
    ref.expect_convs(model, call)
    ref.expect_pooling(model, call)


@pytest.mark.points(3)
def test_kernel_size(submission, rng):
    call = {"kernel_size": (5, 3), "input_shape": (30, 26, 3)}
    model = build(submission, **call)
    check_classifier(model, (30, 26, 3), 10, rng, ref.describe(call), softmax=True)
    ref.expect_convs(model, call)


@pytest.mark.points(3)
def test_strides_without_pooling(submission, rng):
    call = {"strides": 2, "pooling": None}
    model = build(submission, **call)
    check_classifier(model, (28, 28, 1), 10, rng, ref.describe(call), softmax=True)
    ref.expect_convs(model, call)
    ref.expect_pooling(model, call)


@pytest.mark.points(3)
def test_same_padding(submission, rng):
    call = {"padding": "same", "filters": (8, 8, 8)}
    model = build(submission, **call)
    check_classifier(model, (28, 28, 1), 10, rng, ref.describe(call), softmax=True)
    ref.expect_convs(model, call)
    first = ref.layers_of(model, "Conv2D")[0]
    shape = tuple(first.output_shape or ())[1:3]
    expect(
        shape == (28, 28),
        f"{ref.describe(call)}: the first Conv2D outputs {shape} maps from 28x28 images; "
        "'same' padding keeps 28x28",
    )


@pytest.mark.points(3)
def test_dilation(submission, rng):
    call = {"dilation_rate": 2, "filters": (4, 8)}
    model = build(submission, **call)
    check_classifier(model, (28, 28, 1), 10, rng, ref.describe(call), softmax=True)
    ref.expect_convs(model, call)


@pytest.mark.points(3)
def test_average_pooling(submission, rng):
    call = {"pooling": "avg", "filters": (6, 12)}
    model = build(submission, **call)
    check_classifier(model, (28, 28, 1), 10, rng, ref.describe(call), softmax=True)
    ref.expect_pooling(model, call)


@pytest.mark.points(2)
def test_dense_units_and_compiled(submission):
    for call in ({"dense_units": 0}, {"dense_units": 24, "num_classes": 4}):
        model = build(submission, **call)
        ref.expect_dense(model, call)
        problem = compile_problem(model, ref.describe(call))
        expect(problem is None, problem or "")
