"""tf_conv2d(images, kernels, stride=1, padding="VALID") and sobel_edges(images).

Inputs are float32 NHWC batches (what the notebook feeds TensorFlow).
"""

import _reference as ref
import numpy as np
import pytest

from autograder.checks import as_array, expect_array, fail

pytestmark = pytest.mark.question("tf_conv")


def check_conv(submission, images, kernels, **options):
    images = images.astype(np.float32)
    kernels = kernels.astype(np.float32)
    got = submission.call("tf_conv2d", images, kernels, **options)
    expected = ref.conv2d_batch(images, kernels, **options)
    what = ref.conv_call("tf_conv2d", images.shape, kernels.shape, **options)
    expect_array(got, expected, what=what)


@pytest.mark.points(2)
def test_tf_conv2d_defaults(submission, rng):
    """Default stride 1 and VALID padding on a batch with several channels."""
    check_conv(submission, rng.normal(size=(2, 7, 6, 3)), rng.normal(size=(3, 2, 3, 4)))
    check_conv(submission, ref.int_array(rng, (3, 5, 8, 1)), ref.asym_kernel(rng, (2, 3, 1, 2)))


@pytest.mark.points(2)
def test_tf_conv2d_stride(submission, rng):
    check_conv(submission, rng.normal(size=(2, 9, 8, 2)), rng.normal(size=(3, 3, 2, 2)), stride=2)
    check_conv(
        submission,
        ref.int_array(rng, (1, 10, 11, 1)),
        ref.asym_kernel(rng, (3, 2, 1, 3)),
        stride=3,
        padding="VALID",
    )


@pytest.mark.points(2)
def test_tf_conv2d_same(submission, rng):
    check_conv(
        submission, rng.normal(size=(2, 6, 7, 2)), rng.normal(size=(3, 3, 2, 3)), padding="SAME"
    )
    check_conv(
        submission,
        ref.int_array(rng, (2, 8, 7, 1)),
        ref.asym_kernel(rng, (2, 2, 1, 2)),
        stride=2,
        padding="SAME",
    )


@pytest.mark.points(1)
def test_tf_conv2d_pair_stride_lowercase(submission, rng):
    """stride as a (rows, columns) pair; padding in lower case."""
    check_conv(
        submission,
        rng.normal(size=(2, 9, 7, 2)),
        rng.normal(size=(3, 2, 2, 3)),
        stride=(2, 1),
        padding="same",
    )
    check_conv(
        submission,
        ref.int_array(rng, (1, 8, 10, 1)),
        ref.asym_kernel(rng, (2, 3, 1, 2)),
        stride=(1, 3),
        padding="valid",
    )


@pytest.mark.points(1)
def test_tf_conv2d_input_dtypes(submission, rng):
    """float64 images with integer kernels (and the reverse) are converted to float32."""
    images = ref.int_array(rng, (2, 6, 5, 2))
    kernels = ref.asym_kernel(rng, (2, 2, 2, 3)).astype(np.int64)
    what = ref.conv_call("tf_conv2d", images.shape, kernels.shape) + ", float64 images, int kernels"
    got = submission.call("tf_conv2d", images, kernels)
    expect_array(got, ref.conv2d_batch(images, kernels), what=what)
    images = images.astype(np.int32)
    kernels = rng.normal(size=(3, 3, 2, 2))
    what = ref.conv_call("tf_conv2d", images.shape, kernels.shape) + ", int images, float64 kernels"
    got = submission.call("tf_conv2d", images, kernels)
    expect_array(got, ref.conv2d_batch(images, kernels), what=what)


def sobel_input(rng):
    """Integer grey levels / 8 on a non-square batch: exact in float32."""
    return (rng.integers(0, 9, size=(2, 9, 7, 1)) / 8.0).astype(np.float32)


def sobel_result(submission, images):
    what = f"sobel_edges on a {ref.dims(images.shape)} batch"
    return as_array(submission.call("sobel_edges", images), what=what), what


def interior(got, images, what):
    """The responses away from the border, whether or not the border was padded."""
    n, h, w, _ = images.shape
    if got.shape == (n, h, w, 2):
        return got[:, 1:-1, 1:-1, :]
    if got.shape == (n, h - 2, w - 2, 2):
        return got
    fail(f"{what}: expected shape {(n, h, w, 2)}, got shape {got.shape}")
    return None


@pytest.mark.points(1)
def test_sobel_shape(submission, rng):
    """(N, H, W, 1) in, (N, H, W, 2) out: SAME padding keeps the size."""
    images = sobel_input(rng)
    got, what = sobel_result(submission, images)
    n, h, w, _ = images.shape
    if got.shape != (n, h, w, 2):
        fail(f"{what}: expected shape {(n, h, w, 2)}, got shape {got.shape}")


@pytest.mark.points(2)
def test_sobel_gx(submission, rng):
    """Channel 0: cross-correlation with Gx = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]."""
    images = sobel_input(rng)
    got, what = sobel_result(submission, images)
    expected = ref.sobel_edges(images)[:, 1:-1, 1:-1, 0]
    expect_array(interior(got, images, what)[..., 0], expected, what=f"{what}, channel 0 (Gx)")


@pytest.mark.points(2)
def test_sobel_gy(submission, rng):
    """Channel 1: cross-correlation with Gy = Gx transposed."""
    images = sobel_input(rng)
    got, what = sobel_result(submission, images)
    expected = ref.sobel_edges(images)[:, 1:-1, 1:-1, 1]
    expect_array(interior(got, images, what)[..., 1], expected, what=f"{what}, channel 1 (Gy)")


@pytest.mark.points(2)
def test_sobel_zero_padding(submission, rng):
    """The border pixels: SAME padding with zeros."""
    images = sobel_input(rng)
    got, what = sobel_result(submission, images)
    expect_array(got, ref.sobel_edges(images), what=f"{what}, including the border pixels")
