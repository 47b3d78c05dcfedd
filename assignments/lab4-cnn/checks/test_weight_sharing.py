"""conv_matrix(w, input_shape) and conv_vs_dense_params(input_shape, filters, kernel_size)."""

import _reference as ref
import pytest

from autograder.checks import as_array, expect, expect_array, expect_int

pytestmark = pytest.mark.question("weight_sharing")


def matrix_text(w, shape):
    return f"conv_matrix for a {ref.dims(w.shape)} kernel on a {ref.dims(shape)} input"


def get_matrix(submission, w, shape):
    got = submission.call("conv_matrix", w, shape)
    return as_array(got, what=matrix_text(w, shape))


def check_matrix(submission, w, shape):
    expect_array(
        get_matrix(submission, w, shape), ref.conv_matrix(w, shape), what=matrix_text(w, shape)
    )


@pytest.mark.points(1)
def test_conv_matrix_shape(submission, rng):
    """(H_out * W_out, H * W) rows and columns."""
    for w_shape, shape in (((3, 2), (5, 6)), ((2, 2), (4, 7))):
        w = ref.asym_kernel(rng, w_shape)
        m = get_matrix(submission, w, shape)
        expected = ref.conv_matrix(w, shape).shape
        expect(
            m.shape == expected,
            f"{matrix_text(w, shape)}: expected shape {expected}, got shape {m.shape}",
        )


@pytest.mark.points(2)
def test_conv_matrix_square_kernel(submission, rng):
    """Each row holds the kernel at one output position, row-major (no flipping)."""
    check_matrix(submission, ref.asym_kernel(rng, (3, 3)), (5, 5))
    check_matrix(submission, ref.asym_kernel(rng, (2, 2)), (4, 4))


@pytest.mark.points(2)
def test_conv_matrix_rectangular(submission, rng):
    """Rectangular kernels on rectangular inputs: rows vs columns kept apart."""
    check_matrix(submission, ref.asym_kernel(rng, (2, 3)), (4, 6))
    check_matrix(submission, ref.asym_kernel(rng, (3, 1)), (5, 3))


@pytest.mark.points(1)
def test_conv_matrix_product(submission, rng):
    """M @ x.ravel() equals the valid cross-correlation of x with w, flattened row-major."""
    w = rng.normal(size=(2, 3))
    shape = (6, 5)
    m = get_matrix(submission, w, shape)
    x = rng.normal(size=shape)
    what = matrix_text(w, shape)
    expected_shape = ref.conv_matrix(w, shape).shape
    expect(m.shape == expected_shape, f"{what}: expected shape {expected_shape}, got {m.shape}")
    expect_array(
        m.astype(float) @ x.ravel(),
        ref.correlate_valid(x, w).ravel(),
        what=f"{what}, multiplied by a flattened random input",
    )


def check_params(submission, input_shape, filters, kernel_size):
    got = submission.call("conv_vs_dense_params", input_shape, filters, kernel_size)
    expected = ref.conv_vs_dense_params(input_shape, filters, kernel_size)
    what = (
        f"conv_vs_dense_params({input_shape!r}, {filters}, {kernel_size!r}) "
        "as (conv parameters, dense parameters)"
    )
    expect(
        isinstance(got, (tuple, list)) and len(got) == 2,
        f"{what}: expected a pair of ints, got {type(got).__name__} {got!r}"[:400],
    )
    # The notebook asks for ints and its visible test demands them: 16981120.0 is not one.
    expect_int(got[0], expected[0], what=f"{what}, the conv parameter count", exact_type=True)
    expect_int(got[1], expected[1], what=f"{what}, the dense parameter count", exact_type=True)


@pytest.mark.points(2)
def test_params_square_kernel(submission):
    check_params(submission, (28, 28, 1), 32, 3)
    check_params(submission, (32, 32, 3), 16, 5)


@pytest.mark.points(1)
def test_params_pair_kernel(submission):
    check_params(submission, (10, 12, 2), 4, (3, 5))
    check_params(submission, (9, 7, 3), 6, (2, 1))
