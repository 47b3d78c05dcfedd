"""prepare_images(images), prepare_labels(labels), compare_datasets(datasets, epochs, ...).

Run on small synthetic arrays shaped and typed as `load_data` returns each data set
(uint8 28x28 gray images with (N,) labels; uint8 32x32x3 images with (N, 1) labels).
"""

import _cnn_reference as ref
import numpy as np
import pytest

from autograder.checks import as_array, expect, expect_array, fail

pytestmark = pytest.mark.question("data_prep")

N_TRAIN = 40
N_TEST = 7  # a test accuracy is then k/7, which tells it apart from one on the 40 training images


def prepared(submission, images, what):
    got = as_array(submission.call("prepare_images", images), what=what)
    expect(
        got.dtype == np.float32,
        f"{what}: the result has dtype {got.dtype}, expected float32",
    )
    return got


@pytest.mark.points(3)
def test_prepare_gray_images(submission, rng):
    images, _ = ref.synthetic(rng, "fashion_mnist", 5)
    what = "prepare_images on uint8 images of shape (5, 28, 28)"
    got = prepared(submission, images, what)
    expect_array(got, images[..., None] / 255.0, what=what, atol=1e-6)


@pytest.mark.points(2)
def test_prepare_colour_images(submission, rng):
    images, _ = ref.synthetic(rng, "cifar10", 4)
    what = "prepare_images on uint8 images of shape (4, 32, 32, 3)"
    got = prepared(submission, images, what)
    expect_array(got, images / 255.0, what=what, atol=1e-6)
    # Dark images (nothing above 120): scaling is by 255, the range of uint8, not by the
    # brightest pixel that happens to be there.
    ready = rng.integers(0, 121, size=(3, 9, 7, 1), dtype=np.uint8)
    what = "prepare_images on dark uint8 images (0 to 120) of shape (3, 9, 7, 1)"
    expect_array(prepared(submission, ready, what), ready / 255.0, what=what, atol=1e-6)


@pytest.mark.points(3)
def test_prepare_labels(submission, rng):
    for shape, dtype in (((6, 1), np.uint8), ((5,), np.int64), ((4, 1), np.int32)):
        labels = rng.integers(0, 10, size=shape).astype(dtype)
        what = f"prepare_labels on {dtype.__name__} labels of shape {shape}"
        got = submission.call("prepare_labels", labels)
        arr = as_array(got, what=what)
        expect(
            arr.shape == (shape[0],),
            f"{what}: the result has shape {arr.shape}, expected ({shape[0]},)",
        )
        expect(
            isinstance(got, np.ndarray) and got.dtype.kind in "iu",
            f"{what}: expected an integer array, got {getattr(got, 'dtype', type(got).__name__)}",
        )
        expect_array(arr, labels.reshape(-1), what=what)


@pytest.fixture(scope="module")
def comparison(submission):
    rng = np.random.default_rng(21)
    datasets = {
        name: (ref.synthetic(rng, name, N_TRAIN), ref.synthetic(rng, name, N_TEST))
        for name in ("mnist", "fashion_mnist", "cifar10")
    }
    return submission.call("compare_datasets", datasets, epochs=1, batch_size=16)


WHAT = "compare_datasets on MNIST-, Fashion-MNIST- and CIFAR-10-shaped arrays (40 + 7 images)"
KEYS = ("input_shape", "train_accuracy", "test_accuracy", "seconds_per_epoch")


@pytest.mark.points(2)
def test_compare_every_dataset(comparison):
    expect(
        isinstance(comparison, dict), f"{WHAT}: returned {type(comparison).__name__}, not a dict"
    )
    names = sorted(comparison)
    expect(
        names == ["cifar10", "fashion_mnist", "mnist"],
        f"{WHAT}: results for {names}, expected one per data set given",
    )
    for name, result in comparison.items():
        missing = [k for k in KEYS if not isinstance(result, dict) or k not in result]
        expect(not missing, f"{WHAT}: the result for {name} lacks {missing}")


@pytest.mark.points(2)
def test_compare_input_shapes(comparison):
    for name in ("mnist", "fashion_mnist", "cifar10"):
        result = comparison.get(name) if isinstance(comparison, dict) else None
        if not isinstance(result, dict):
            fail(f"{WHAT}: no result for {name}")
        shape = tuple(int(d) for d in np.asarray(result.get("input_shape", ())).ravel())
        expect(
            shape == ref.prepared_shape(name),
            f"{WHAT}: {name} was trained with input shape {shape}, expected "
            f"{ref.prepared_shape(name)}",
        )


@pytest.mark.points(3)
def test_compare_accuracies(comparison):
    for name in ("mnist", "fashion_mnist", "cifar10"):
        result = comparison.get(name) if isinstance(comparison, dict) else None
        if not isinstance(result, dict):
            fail(f"{WHAT}: no result for {name}")
        for key in ("train_accuracy", "test_accuracy"):
            value = result.get(key)
            expect(
                isinstance(value, (int, float)) and 0.0 <= value <= 1.0,
                f"{WHAT}: {name}'s {key} is {value!r:.60}, expected a number in [0, 1]",
            )
        k = result["test_accuracy"] * N_TEST
        expect(
            abs(k - round(k)) < 1e-3,
            f"{WHAT}: {name}'s test_accuracy {result['test_accuracy']:.4f} is not an accuracy "
            f"on the {N_TEST} test images; evaluate the model on the test data",
        )
        seconds = result.get("seconds_per_epoch")
        expect(
            isinstance(seconds, (int, float)) and seconds >= 0,
            f"{WHAT}: {name}'s seconds_per_epoch is {seconds!r:.60}, expected seconds",
        )
