"""conv2d(x, w, stride=1, padding=0): multi-channel 2D cross-correlation, HWIO kernels.

Expected values follow tf.nn.conv2d, including TensorFlow's SAME rule (the extra
padding row/column goes at the bottom/right).
"""

import _reference as ref
import pytest

from autograder.checks import expect_array

pytestmark = pytest.mark.question("conv2d")


def check(submission, x, w, **options):
    got = submission.call("conv2d", x, w, **options)
    expected = ref.conv2d(x, w, **options)
    expect_array(got, expected, what=ref.conv_call("conv2d", x.shape, w.shape, **options))


@pytest.mark.points(2)
def test_valid_single_channel(submission, rng):
    """Defaults (stride 1, no padding) on rectangular inputs and kernels, one channel."""
    for kh, kw in ((3, 2), (2, 4)):
        x = ref.int_array(rng, (int(rng.integers(6, 9)), int(rng.integers(7, 10)), 1))
        check(submission, x, ref.asym_kernel(rng, (kh, kw, 1, 1)))


@pytest.mark.points(3)
def test_multi_channel(submission, rng):
    """Several input channels summed, several output channels kept apart (HWIO)."""
    for shape, kshape in (((6, 7, 3), (3, 3, 3, 4)), ((5, 8, 2), (2, 3, 2, 5))):
        check(submission, rng.normal(size=shape), rng.normal(size=kshape))


@pytest.mark.points(2)
def test_int_stride(submission, rng):
    """An int stride on both axes, sizes where the last window does not fit exactly."""
    for shape, kshape, s in (((9, 8, 2), (3, 2, 2, 3), 2), ((10, 11, 1), (3, 2, 1, 2), 3)):
        check(submission, ref.int_array(rng, shape), ref.asym_kernel(rng, kshape), stride=s)


@pytest.mark.points(1)
def test_pair_stride(submission, rng):
    """(row stride, column stride)."""
    for shape, kshape, s in (((9, 7, 2), (3, 3, 2, 2), (2, 1)), ((6, 10, 1), (2, 3, 1, 3), (1, 3))):
        check(submission, ref.int_array(rng, shape), ref.asym_kernel(rng, kshape), stride=s)


@pytest.mark.points(2)
def test_int_padding(submission, rng):
    """Zeros on all four sides."""
    cases = (((5, 6, 2), (3, 3, 2, 2), 1, 1), ((7, 6, 1), (3, 2, 1, 2), 2, 2))
    for shape, kshape, p, s in cases:
        x, w = ref.int_array(rng, shape), ref.asym_kernel(rng, kshape)
        check(submission, x, w, stride=s, padding=p)


@pytest.mark.points(1)
def test_pair_padding(submission, rng):
    """(rows of zeros top and bottom, columns of zeros left and right)."""
    cases = (((5, 6, 2), (3, 3, 2, 2), (1, 2), 1), ((6, 5, 1), (2, 3, 1, 2), (0, 1), (2, 1)))
    for shape, kshape, p, s in cases:
        x, w = ref.int_array(rng, shape), ref.asym_kernel(rng, kshape)
        check(submission, x, w, stride=s, padding=p)


@pytest.mark.points(2)
def test_same_odd_kernel(submission, rng):
    """padding='same', stride 1, odd kernels: output size equals input size."""
    for shape, kshape in (((6, 7, 2), (3, 3, 2, 3)), ((7, 5, 1), (5, 3, 1, 2))):
        x, w = ref.int_array(rng, shape), ref.asym_kernel(rng, kshape)
        check(submission, x, w, padding="same")


@pytest.mark.points(2)
def test_same_even_kernel(submission, rng):
    """padding='SAME' with even kernel sizes: the extra zero goes at the bottom/right."""
    for shape, kshape in (((6, 7, 2), (2, 2, 2, 2)), ((5, 6, 1), (4, 3, 1, 2))):
        x, w = ref.int_array(rng, shape), ref.asym_kernel(rng, kshape)
        check(submission, x, w, padding="SAME")


@pytest.mark.points(2)
def test_same_strided(submission, rng):
    """padding='same' with strides: output ceil(n / s), TensorFlow's padding split."""
    cases = (
        ((8, 8, 2), (3, 3, 2, 2), 2, "same"),
        ((7, 10, 1), (3, 4, 1, 2), (2, 3), "SAME"),
        ((9, 6, 2), (2, 3, 2, 1), (3, 2), "same"),
    )
    for shape, kshape, s, p in cases:
        x, w = ref.int_array(rng, shape), ref.asym_kernel(rng, kshape)
        check(submission, x, w, stride=s, padding=p)


@pytest.mark.points(1)
def test_valid_string(submission, rng):
    """padding='valid' / 'VALID' means no padding."""
    for shape, kshape, s, p in (
        ((7, 8, 2), (3, 2, 2, 2), (2, 1), "valid"),
        ((6, 6, 1), (2, 2, 1, 3), 2, "VALID"),
    ):
        x, w = ref.int_array(rng, shape), ref.asym_kernel(rng, kshape)
        check(submission, x, w, stride=s, padding=p)
