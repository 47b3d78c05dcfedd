"""conv1d(x, w, stride=1, padding=0): 1D cross-correlation with stride and zero padding."""

import _reference as ref
import pytest

from autograder.checks import expect_array

pytestmark = pytest.mark.question("conv1d")


def check(submission, x, w, **options):
    what = f"conv1d on a length-{len(x)} input with a length-{len(w)} kernel"
    given = ", ".join(f"{k}={v!r}" for k, v in options.items())
    what += f", {given}" if given else " (default stride and padding)"
    got = submission.call("conv1d", x, w, **options)
    expect_array(got, ref.conv1d(x, w, **options), what=what)


@pytest.mark.points(3)
def test_valid_default_arguments(submission, rng):
    """Defaults: stride 1, no padding; asymmetric odd and even kernels catch flipping."""
    for k in (3, 4):
        n = int(rng.integers(9, 15))
        check(submission, ref.int_array(rng, n), ref.asym_kernel(rng, k))


@pytest.mark.points(2)
def test_stride(submission, rng):
    """Strides where (n - k) is not a multiple of the stride: floor, not ceil."""
    for n, k, s in ((12, 3, 2), (14, 4, 3), (10, 2, 4)):
        check(submission, ref.int_array(rng, n), ref.asym_kernel(rng, k), stride=s)


@pytest.mark.points(2)
def test_padding(submission, rng):
    """Zero padding on both ends."""
    for n, k, p in ((8, 3, 1), (9, 4, 2), (6, 5, 3)):
        check(submission, ref.int_array(rng, n), ref.asym_kernel(rng, k), padding=p)


@pytest.mark.points(2)
def test_stride_and_padding(submission, rng):
    for n, k, s, p in ((11, 3, 2, 1), (13, 4, 3, 2), (20, 5, 2, 2)):
        x = rng.normal(size=n)
        w = rng.normal(size=k)
        check(submission, x, w, stride=s, padding=p)


@pytest.mark.points(1)
def test_edge_sizes(submission, rng):
    """Kernel as long as the input (one output) and a length-1 kernel."""
    x = ref.int_array(rng, 6)
    check(submission, x, ref.asym_kernel(rng, 6))
    check(submission, x, ref.int_array(rng, 1, 1, 4))
