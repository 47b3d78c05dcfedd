"""Assertions for check authors, with messages a student can act on.

A failed check shows the student only its message: what was called (described
in words, e.g. "conv2d on a 7x5x3 input, stride 2"), what was expected and
what came back. The hidden check's code and inputs stay out of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_REPR = 300


class CheckFailure(AssertionError):
    """A check's verdict with a message meant for the student."""


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        text = np.array2string(value, precision=4, threshold=20, edgeitems=3)
        return f"array of shape {value.shape}: {text}"[:MAX_REPR]
    text = repr(value)
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


def fail(message: str) -> None:
    raise CheckFailure(message)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailure(message)


def as_array(got: Any, *, what: str) -> np.ndarray:
    """Accept an ndarray, or a (nested) list/tuple of plain numbers, as an array."""
    if isinstance(got, np.ndarray):
        return got
    if isinstance(got, (list, tuple)):
        try:
            arr = np.asarray(got, dtype=float)
        except (TypeError, ValueError):
            fail(f"{what}: expected an array of numbers, got {_short(got)}")
        return arr
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        return np.asarray(got, dtype=float)
    fail(f"{what}: expected an array, got {type(got).__name__} {_short(got)}")
    raise AssertionError  # unreachable


def expect_array(
    got: Any, expected: np.ndarray, *, what: str, atol: float = 1e-4, rtol: float = 1e-4
) -> None:
    """Same shape and values within tolerance; NaN never passes."""
    arr = as_array(got, what=what)
    expected = np.asarray(expected)
    if arr.shape != expected.shape:
        fail(f"{what}: expected shape {expected.shape}, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        fail(f"{what}: expected numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        fail(f"{what}: the result contains NaN or infinity")
    close = np.isclose(arr, expected, atol=atol, rtol=rtol)
    if not close.all():
        bad = np.argwhere(~close)[0]
        idx = tuple(int(i) for i in bad)
        err = float(np.max(np.abs(arr - expected)))
        fail(
            f"{what}: {int((~close).sum())} of {arr.size} values are wrong; at index {idx} "
            f"expected {expected[idx]:.5g}, got {arr[idx]:.5g} (max abs error {err:.3g})"
        )


def expect_int(got: Any, expected: int, *, what: str, exact_type: bool = False) -> None:
    """An integer result; an integral float (5.0) is accepted as the same number unless
    `exact_type`, for tasks that ask for an `int` (a visible test that demands one and a
    hidden check that accepts 5.0 would disagree)."""
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        fail(f"{what}: expected the integer {expected}, got {type(got).__name__} {_short(got)}")
    if exact_type and not isinstance(got, int):
        fail(f"{what}: expected the int {expected}, got the float {got!r}; return an int")
    if isinstance(got, float) and not got.is_integer():
        fail(f"{what}: expected the integer {expected}, got {got!r}")
    if int(got) != expected:
        fail(f"{what}: expected {expected}, got {_short(got)}")


def expect_equal(got: Any, expected: Any, *, what: str) -> None:
    """Exact equality of plain data (ints, strings, tuples of them)."""
    if isinstance(expected, tuple) and isinstance(got, (tuple, list)):
        if len(got) != len(expected):
            fail(f"{what}: expected {len(expected)} values {expected!r}, got {_short(got)}")
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            if isinstance(e, int):
                expect_int(g, e, what=f"{what}, item {i}")
            else:
                expect_equal(g, e, what=f"{what}, item {i}")
        return
    if isinstance(expected, int) and not isinstance(expected, bool):
        expect_int(got, expected, what=what)
        return
    if type(got) is not type(expected) or got != expected:
        fail(f"{what}: expected {_short(expected)}, got {_short(got)}")
