"""max_pool2d / avg_pool2d(x, pool_size=2, stride=None): per-channel pooling, no padding."""

import _reference as ref
import numpy as np
import pytest

from autograder.checks import expect_array

pytestmark = pytest.mark.question("pooling")

NAMES = {"max": "max_pool2d", "avg": "avg_pool2d"}


def check(submission, op, x, **options):
    fn = NAMES[op]
    given = ", ".join(f"{k}={v!r}" for k, v in options.items())
    what = f"{fn} on a {ref.dims(x.shape)} input" + (f" with {given}" if given else "")
    if "stride" not in options:
        what += " (default stride)"
    got = submission.call(fn, x, **options)
    expect_array(got, ref.pool2d(x, op=op, **options), what=what)


def distinct(rng, shape, low=-50):
    """Integer values, all different, so a wrong window or channel shows."""
    size = int(np.prod(shape))
    return rng.permutation(size).reshape(shape).astype(float) + low


@pytest.mark.points(2)
def test_max_default(submission, rng):
    """pool_size 2, stride defaulting to the pool size; odd sizes drop the last row/column."""
    check(submission, "max", distinct(rng, (6, 8, 3)))
    check(submission, "max", distinct(rng, (7, 9, 2)))


@pytest.mark.points(1)
def test_max_pool_size(submission, rng):
    """pool_size 3 with the default stride (3)."""
    check(submission, "max", distinct(rng, (9, 10, 2)), pool_size=3)
    check(submission, "max", distinct(rng, (8, 7, 1)), pool_size=3)


@pytest.mark.points(2)
def test_max_explicit_stride(submission, rng):
    """Overlapping windows (stride < pool size) and stride > pool size."""
    check(submission, "max", distinct(rng, (9, 8, 2)), pool_size=3, stride=2)
    check(submission, "max", distinct(rng, (5, 6, 3)), pool_size=2, stride=1)
    check(submission, "max", distinct(rng, (9, 11, 2)), pool_size=2, stride=3)


@pytest.mark.points(1)
def test_max_negative_values(submission, rng):
    """All inputs negative: the maximum is negative too."""
    check(submission, "max", -1.0 - distinct(rng, (6, 6, 2), low=0))
    check(submission, "max", -1.0 - distinct(rng, (7, 5, 2), low=0), pool_size=3, stride=2)


@pytest.mark.points(2)
def test_avg_default(submission, rng):
    check(submission, "avg", distinct(rng, (6, 8, 3)))
    check(submission, "avg", distinct(rng, (7, 5, 2)))


@pytest.mark.points(2)
def test_avg_pool_size_and_stride(submission, rng):
    check(submission, "avg", distinct(rng, (9, 10, 2)), pool_size=3)
    check(submission, "avg", distinct(rng, (9, 8, 2)), pool_size=3, stride=2)
    check(submission, "avg", rng.normal(size=(5, 6, 3)), pool_size=2, stride=1)


@pytest.mark.points(1)
def test_pair_pool_size_and_stride(submission, rng):
    """pool_size and stride as (rows, columns) pairs."""
    check(submission, "max", distinct(rng, (8, 9, 2)), pool_size=(2, 3))
    check(submission, "avg", distinct(rng, (8, 9, 2)), pool_size=(3, 2), stride=(2, 1))
    check(submission, "max", distinct(rng, (7, 10, 1)), pool_size=(2, 2), stride=(1, 3))
