"""conv_output_size, same_padding and tf_output_size: output-size arithmetic.

The notebook asks for Python ints and its visible test demands one, so every check here
does too (`exact_type`): a float such as 5.0, even with the right value, fails. numpy
integers count as ints (they cross the bridge as plain ints).
"""

import _reference as ref
import pytest

from autograder.checks import expect_int

pytestmark = pytest.mark.question("conv_arithmetic")


def call_text(fn, args, kwargs):
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{fn}({', '.join(parts)})"


def check_output_size(submission, n, k, **kwargs):
    got = submission.call("conv_output_size", n, k, **kwargs)
    expected = ref.conv_output_size(n, k, **kwargs)
    expect_int(got, expected, what=call_text("conv_output_size", (n, k), kwargs), exact_type=True)


def check_tf_size(submission, n, k, **kwargs):
    got = submission.call("tf_output_size", n, k, **kwargs)
    expected = ref.tf_output_size(n, k, **kwargs)
    expect_int(got, expected, what=call_text("tf_output_size", (n, k), kwargs), exact_type=True)


@pytest.mark.points(2)
def test_output_size_defaults(submission, rng):
    """Stride 1, no padding, no dilation: n - k + 1, for odd and even kernels."""
    cases = [(28, 3), (32, 5), (10, 4), (7, 7), (5, 1)]
    cases.append((int(rng.integers(20, 60)), int(rng.integers(2, 8))))
    for n, k in cases:
        check_output_size(submission, n, k)


@pytest.mark.points(2)
def test_output_size_stride(submission):
    """floor((n - k) / s) + 1, including sizes where the division is not exact."""
    for n, k, s in ((28, 3, 2), (10, 3, 3), (11, 4, 2), (9, 3, 3), (32, 5, 4)):
        check_output_size(submission, n, k, stride=s)


@pytest.mark.points(2)
def test_output_size_padding(submission):
    """Padding adds p zeros on BOTH sides: floor((n + 2p - k) / s) + 1."""
    for n, k, s, p in ((28, 3, 1, 1), (5, 3, 1, 2), (7, 3, 2, 1), (10, 5, 3, 2), (9, 4, 2, 1)):
        check_output_size(submission, n, k, stride=s, padding=p)


@pytest.mark.points(2)
def test_output_size_dilation(submission):
    """A dilated kernel spans k + (k - 1)(d - 1) inputs."""
    cases = (
        (28, 3, 1, 0, 2),
        (10, 3, 1, 1, 2),
        (15, 3, 2, 0, 3),
        (20, 4, 2, 1, 2),
        (9, 2, 1, 0, 4),
    )
    for n, k, s, p, d in cases:
        check_output_size(submission, n, k, stride=s, padding=p, dilation=d)


@pytest.mark.points(1)
def test_same_padding(submission):
    """Per-side padding that keeps the size for an odd kernel at stride 1."""
    for k in (1, 3, 5, 7, 11):
        expect_int(
            submission.call("same_padding", k),
            ref.same_padding(k),
            what=f"same_padding({k})",
            exact_type=True,
        )


@pytest.mark.points(1)
def test_tf_output_size_valid(submission):
    """VALID: ceil((n - k + 1) / s); the default padding, either case."""
    check_tf_size(submission, 28, 3)
    check_tf_size(submission, 11, 4, stride=2)
    for n, k, s, p in ((28, 3, 2, "valid"), (10, 4, 3, "VALID"), (9, 2, 4, "valid")):
        check_tf_size(submission, n, k, stride=s, padding=p)


@pytest.mark.points(2)
def test_tf_output_size_same(submission):
    """SAME: ceil(n / s), whatever the kernel size; either case. Even kernels with a stride
    that divides n too (8, 2, 2 and 28, 4, 1): symmetric padding of `same_padding(k)` gives
    one more there (floor(n / s) + 1), TensorFlow pads the extra pixel on one side only."""
    cases = ((28, 3, 2, "same"), (7, 3, 2, "SAME"), (10, 4, 3, "same"), (5, 5, 1, "SAME"))
    for n, k, s, p in cases + ((11, 2, 4, "same"), (8, 2, 2, "same"), (28, 4, 1, "SAME")):
        check_tf_size(submission, n, k, stride=s, padding=p)
