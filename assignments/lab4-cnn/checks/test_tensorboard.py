"""log_images(logdir, images, step=0, name="samples", max_outputs=9) and filters_to_images(model).

log_images is checked by reading the event files it leaves in a scratch folder,
here in the grader: every file is read through `read_untrusted` (no links, size
limits) and parsed as protobuf records; the PNGs are decoded with Pillow after
their size is checked. Nothing the student's code returns is trusted.
"""

import _reference as ref
import numpy as np
import pytest

from autograder.checks import as_array, expect, expect_array, fail
from autograder.tbevents import ImageSummary, decode_png, image_summaries

pytestmark = pytest.mark.question("tensorboard")


def logged(submission, tag: str, images, what: str, **options) -> tuple[list, int]:
    """Call log_images into a fresh folder; return (the tag's summaries, its step)."""
    logdir = submission.scratch_path("tensorboard")
    if "name" in options:
        # `name` cannot be a keyword of Submission.call (its own first parameter), so
        # step and name go by position, as in the signature (logdir, images, step, name).
        kwargs = {k: v for k, v in options.items() if k not in ("step", "name")}
        args = (str(logdir), images, options.get("step", 0), options["name"])
        submission.call("log_images", *args, **kwargs)
    else:
        submission.call("log_images", str(logdir), images, **options)
    summaries = image_summaries(logdir)
    if not summaries:
        fail(
            f"{what}: found no image summary in the log directory (use tf.summary.image "
            "inside `with writer.as_default():`, or flush the writer)"
        )
    mine = [s for s in summaries if s.tag == tag or s.tag.endswith("/" + tag)]
    if not mine:
        tags = sorted({s.tag for s in summaries})
        fail(f"{what}: expected an image summary named {tag!r}, found {tags}"[:500])
    return mine, options.get("step", 0)


def at_step(mine: list, step: int, tag: str, what: str) -> ImageSummary:
    hits = [s for s in mine if s.step == step]
    if not hits:
        steps = sorted({s.step for s in mine})
        fail(f"{what}: the {tag!r} images were logged at step(s) {steps}, expected step {step}")
    return hits[-1]


def check_images(summary: ImageSummary, images: np.ndarray, count: int, what: str) -> None:
    expect(
        len(summary.pngs) == count,
        f"{what}: the summary holds {len(summary.pngs)} image(s), expected {count}",
    )
    for i, png in enumerate(summary.pngs):
        arr = decode_png(png, what)
        expected = images[i] * 255.0
        expect(
            arr.shape == expected.shape,
            f"{what}: image {i} is {ref.dims(arr.shape)} (height x width x channels), "
            f"expected {ref.dims(expected.shape)}",
        )
        expect_array(
            arr, expected, atol=1.5, rtol=0, what=f"{what}: pixel values (0-255) of image {i}"
        )


def grey_levels(rng, shape) -> np.ndarray:
    """Values k / 255, so a PNG stores them exactly however they are rounded."""
    return (rng.integers(0, 256, size=shape) / 255.0).astype(np.float32)


@pytest.mark.points(3)
def test_log_images_defaults(submission, rng):
    """Defaults: tag 'samples', step 0, all of 4 images (max_outputs 9), right size, pixels."""
    images = grey_levels(rng, (4, 8, 6, 1))
    what = "log_images(logdir, 4 images of 8x6x1)"
    mine, step = logged(submission, "samples", images, what)
    check_images(at_step(mine, step, "samples", what), images, 4, what)


@pytest.mark.points(2)
def test_log_images_max_outputs(submission, rng):
    """At most max_outputs images: 9 by default, fewer when asked."""
    images = grey_levels(rng, (12, 5, 5, 1))
    what = "log_images(logdir, 12 images of 5x5x1)"
    mine, step = logged(submission, "samples", images, what)
    check_images(at_step(mine, step, "samples", what), images, 9, what)
    what = "log_images(logdir, 12 images of 5x5x1, max_outputs=2)"
    mine, step = logged(submission, "samples", images, what, max_outputs=2)
    check_images(at_step(mine, step, "samples", what), images, 2, what)


@pytest.mark.points(2)
def test_log_images_step_and_name(submission, rng):
    images = grey_levels(rng, (3, 7, 5, 1))
    what = "log_images(logdir, 3 images of 7x5x1, step=5, name='digits')"
    mine, step = logged(submission, "digits", images, what, step=5, name="digits")
    check_images(at_step(mine, step, "digits", what), images, 3, what)


@pytest.mark.points(1)
def test_log_images_rgb(submission, rng):
    images = grey_levels(rng, (2, 6, 5, 3))
    what = "log_images(logdir, 2 RGB images of 6x5x3, name='rgb')"
    mine, step = logged(submission, "rgb", images, what, name="rgb")
    check_images(at_step(mine, step, "rgb", what), images, 2, what)


# Models handed to filters_to_images: its first Conv2D is not always `model.layers[0]`
# (a Rescaling in front) nor the only Conv2D (another one behind it).
RESCALING = (("Rescaling", {"scale": 1 / 255}),)


def filters(submission, kernel, input_shape, layers_before=(), kernels_after=()):
    got = submission.call_with_model(
        "filters_to_images",
        kernel=kernel,
        input_shape=input_shape,
        layers_before=layers_before,
        kernels_after=kernels_after,
    )
    layout = (
        "".join(f"{cls} -> " for cls, _ in layers_before)
        + "Conv2D"
        + " -> Conv2D" * len(kernels_after)
    )
    what = (
        f"filters_to_images on a model ({layout}) whose first Conv2D has a "
        f"{ref.dims(kernel.shape)} kernel (kh x kw x in x out)"
    )
    return as_array(got, what=what), what


@pytest.fixture(scope="module")
def scaled_filters(submission):
    """filters_to_images on 5 filters of 3x2, each scaled and offset its own way: the shape
    and the value checks read this one answer (one model built in the kernel, not two)."""
    rng = np.random.default_rng(20241)
    scale = np.array([0.1, 1.0, 5.0, 0.5, 2.0])
    offset = np.array([0.0, 3.0, -2.0, 1.0, -0.5])
    kernel = (rng.normal(size=(3, 2, 1, 5)) * scale + offset).astype(np.float32)
    got, what = filters(submission, kernel, (9, 8, 1))
    return kernel, got, what


@pytest.mark.points(1)
def test_filters_to_images_shape(scaled_filters):
    """(C_out, kh, kw, 1): one single-channel image per filter."""
    _, got, what = scaled_filters
    expect(got.shape == (5, 3, 2, 1), f"{what}: expected shape (5, 3, 2, 1), got {got.shape}")


@pytest.mark.points(3)
def test_filters_to_images_values(scaled_filters):
    """Each filter min-max scaled to [0, 1] on its own; rectangular kernels stay kh x kw."""
    kernel, got, what = scaled_filters
    expect_array(got, ref.filters_to_images(kernel), what=what)


@pytest.mark.points(2)
def test_filters_to_images_first_conv2d(submission, rng):
    """The FIRST Conv2D, wherever it is: not layer 0 (a Rescaling comes first), not the last
    (another Conv2D behind it)."""
    kernel = rng.normal(size=(3, 3, 1, 4)).astype(np.float32)
    after = rng.normal(size=(2, 2, 4, 6)).astype(np.float32)
    got, what = filters(submission, kernel, (10, 10, 1), RESCALING, (after,))
    expect_array(got, ref.filters_to_images(kernel), what=what)


@pytest.mark.points(2)
def test_filters_to_images_input_channel_0(submission, rng):
    """With several input channels, the images show input channel 0."""
    kernel = rng.normal(size=(3, 3, 3, 4)).astype(np.float32)
    after = rng.normal(size=(3, 3, 4, 2)).astype(np.float32)
    got, what = filters(submission, kernel, (8, 8, 3), kernels_after=(after,))
    expect_array(got, ref.filters_to_images(kernel), what=what)


@pytest.mark.points(1)
def test_filters_to_images_constant_filter(submission, rng):
    """A constant filter (no range to scale) becomes all zeros, never NaN."""
    kernel = rng.normal(size=(2, 3, 1, 3)).astype(np.float32)
    kernel[:, :, 0, 1] = 0.25
    got, what = filters(submission, kernel, (7, 7, 1), RESCALING)
    expect_array(got, ref.filters_to_images(kernel), what=f"{what}, one filter constant")
