"""Reference answers for the Lab 4 checks, written independently of the notebook.

Plain numpy (float64, explicit loops over kernel offsets), so a check's expected
value never depends on the TensorFlow build the grader happens to run. Nothing
here imports TensorFlow; nothing here is ever sent into a student's kernel.

Also: small input generators and the words checks use to describe a call.
"""

from __future__ import annotations

import math

import numpy as np

# -- describing a call in words ----------------------------------------------------------


def dims(shape) -> str:
    """(7, 5, 3) -> '7x5x3'."""
    return "x".join(str(int(d)) for d in shape)


def conv_call(fn: str, x_shape, w_shape, **options) -> str:
    """'conv2d on a 7x5x3 input with a 3x2x3x4 kernel, stride (2, 1), padding 'same''."""
    text = f"{fn} on a {dims(x_shape)} input with a {dims(w_shape)} kernel"
    given = [f"{k} {v!r}" for k, v in options.items()]
    return text + (", " + ", ".join(given) if given else " (default stride and padding)")


# -- inputs --------------------------------------------------------------------------------


def int_array(rng: np.random.Generator, shape, low: int = -4, high: int = 5) -> np.ndarray:
    """Integer-valued float64 array: results are exact, so tolerances never hide a bug."""
    return rng.integers(low, high, size=shape).astype(np.float64)


def asym_kernel(rng: np.random.Generator, shape, low: int = -4, high: int = 5) -> np.ndarray:
    """Integer kernel that differs from itself flipped along each spatial axis.

    A true convolution (flipped kernel) or a transposed kernel then gives
    different numbers than a cross-correlation.
    """
    shape = tuple(np.atleast_1d(shape))
    axes = [a for a in range(min(2, len(shape))) if shape[a] > 1]
    for _ in range(1000):
        w = int_array(rng, shape, low, high)
        flips = [np.flip(w, axis=a) for a in axes]
        if len(axes) == 2:
            flips.append(np.flip(w, axis=tuple(axes)))
        if all(not np.array_equal(w, f) for f in flips) and np.count_nonzero(w) >= w.size // 2:
            return w
    raise AssertionError(f"no asymmetric integer kernel of shape {shape}")


# -- 1D / 2D cross-correlation -------------------------------------------------------------


def conv1d(x, w, stride: int = 1, padding: int = 0) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    xp = np.concatenate([np.zeros(padding), x, np.zeros(padding)])
    k = len(w)
    n_out = (len(xp) - k) // stride + 1
    return np.array([xp[i * stride : i * stride + k] @ w for i in range(n_out)])


def pair(value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def tf_same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow's SAME padding along one axis: (before, after), the extra one after."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def conv2d_pads(x_hw, w_hw, stride, padding) -> tuple[tuple[int, int], tuple[int, int]]:
    sh, sw = pair(stride)
    if isinstance(padding, str):
        if padding.lower() == "valid":
            return (0, 0), (0, 0)
        if padding.lower() == "same":
            return tf_same_pads(x_hw[0], w_hw[0], sh), tf_same_pads(x_hw[1], w_hw[1], sw)
        raise ValueError(padding)
    ph, pw = pair(padding)
    return (ph, ph), (pw, pw)


def conv2d(x, w, stride=1, padding=0) -> np.ndarray:
    """x (H, W, C_in), w (kh, kw, C_in, C_out) -> (H_out, W_out, C_out); TF semantics."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    kh, kw = w.shape[:2]
    sh, sw = pair(stride)
    pad_h, pad_w = conv2d_pads(x.shape[:2], (kh, kw), stride, padding)
    xp = np.pad(x, (pad_h, pad_w, (0, 0)))
    ho = (xp.shape[0] - kh) // sh + 1
    wo = (xp.shape[1] - kw) // sw + 1
    out = np.zeros((ho, wo, w.shape[3]))
    for i in range(kh):
        for j in range(kw):
            patch = xp[i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw, :]
            out += patch @ w[i, j]
    return out


def conv2d_batch(images, kernels, stride=1, padding="VALID") -> np.ndarray:
    return np.stack([conv2d(img, kernels, stride, padding) for img in np.asarray(images)])


def correlate_valid(x, w) -> np.ndarray:
    """2D valid cross-correlation of one-channel x (H, W) with w (kh, kw)."""
    return conv2d(np.asarray(x)[:, :, None], np.asarray(w)[:, :, None, None])[:, :, 0]


# -- output-size arithmetic ----------------------------------------------------------------


def conv_output_size(n, k, stride=1, padding=0, dilation=1) -> int:
    effective = k + (k - 1) * (dilation - 1)
    return (n + 2 * padding - effective) // stride + 1


def same_padding(k) -> int:
    return k // 2


def tf_output_size(n, k, stride=1, padding="valid") -> int:
    if padding.lower() == "same":
        return math.ceil(n / stride)
    return math.ceil((n - k + 1) / stride)


# -- pooling ---------------------------------------------------------------------------------


def pool2d(x, pool_size=2, stride=None, op: str = "max") -> np.ndarray:
    """Per-channel pooling of x (H, W, C), no padding; pool_size/stride ints or pairs."""
    x = np.asarray(x, dtype=np.float64)
    ph, pw = pair(pool_size)
    sh, sw = (ph, pw) if stride is None else pair(stride)
    ho = (x.shape[0] - ph) // sh + 1
    wo = (x.shape[1] - pw) // sw + 1
    out = np.empty((ho, wo, x.shape[2]))
    for i in range(ho):
        for j in range(wo):
            window = x[i * sh : i * sh + ph, j * sw : j * sw + pw, :]
            out[i, j] = window.max(axis=(0, 1)) if op == "max" else window.mean(axis=(0, 1))
    return out


# -- weight sharing --------------------------------------------------------------------------


def conv_matrix(w, input_shape) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    h, wd = input_shape
    kh, kw = w.shape
    ho, wo = h - kh + 1, wd - kw + 1
    m = np.zeros((ho * wo, h * wd))
    for r in range(ho):
        for c in range(wo):
            for i in range(kh):
                for j in range(kw):
                    m[r * wo + c, (r + i) * wd + (c + j)] = w[i, j]
    return m


def conv_vs_dense_params(input_shape, filters, kernel_size) -> tuple[int, int]:
    h, w, c = input_shape
    kh, kw = pair(kernel_size)
    conv = kh * kw * c * filters + filters
    outputs = (h - kh + 1) * (w - kw + 1) * filters
    dense = h * w * c * outputs + outputs
    return conv, dense


# -- Sobel and filter images -----------------------------------------------------------------

SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
SOBEL_Y = SOBEL_X.T.copy()


def sobel_edges(images) -> np.ndarray:
    """(N, H, W, 1) -> (N, H, W, 2): responses to Gx and Gy, zero SAME padding."""
    kernels = np.stack([SOBEL_X, SOBEL_Y], axis=-1)[:, :, None, :]
    return conv2d_batch(images, kernels, 1, "same")


def filters_to_images(kernel) -> np.ndarray:
    """Kernel (kh, kw, C, F) -> (F, kh, kw, 1): input channel 0, min-max scaled per filter.

    A constant filter becomes all zeros.
    """
    k = np.asarray(kernel, dtype=np.float64)[:, :, 0, :]
    k = np.moveaxis(k, -1, 0)
    lo = k.min(axis=(1, 2), keepdims=True)
    span = k.max(axis=(1, 2), keepdims=True) - lo
    safe = np.where(span > 0, span, 1.0)
    return np.where(span > 0, (k - lo) / safe, 0.0)[..., None]


# -- Keras models: the engine's generic helpers for StudentModel (plain data) ----------------

from autograder.model_checks import (  # noqa: E402,F401 - the checks use them as ref.<name>
    all_layers,
    check_classifier,
    compile_problem,
    conv2d_depth,
    count_conv2d,
    count_pooling,
    forward,
    input_shape_of,
)
