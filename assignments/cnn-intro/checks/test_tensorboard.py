"""log_training(logdir, x, y, epochs=2, batch_size=32, validation_split=0.2, n_images=4).

The student's function trains in its own (sandboxed) kernel and leaves event files in a
scratch folder; the checks read them here with `autograder.tbevents` (untrusted files:
no links, size caps, protobuf parsing only). What the function returns is compared with
what it logged, never trusted on its own.
"""

import numpy as np
import pytest

from autograder.checks import expect, fail
from autograder.tbevents import EventLog, decode_png, read_events

pytestmark = pytest.mark.question("tensorboard")

SCALARS = ("epoch_loss", "epoch_accuracy")


class Run:
    """One call of log_training and what it left behind."""

    def __init__(self, submission, rng, *, shape, n, what, **options):
        self.x = rng.random((n, *shape)).astype(np.float32)
        self.y = rng.integers(0, 10, n)
        self.options = options
        self.what = what
        logdir = submission.scratch_path("tensorboard")
        self.history = submission.call("log_training", str(logdir), self.x, self.y, **options)
        self.log: EventLog = read_events(logdir)

    def series(self, run: str, tag: str) -> dict[int, float]:
        found = self.log.series(run, tag)
        if not found:
            runs = sorted(self.log.runs()) or ["none"]
            tags = sorted({s.tag for s in self.log.scalars if s.run == run})
            fail(
                f"{self.what}: no {tag!r} scalars in {self.log_name(run)} (folders with "
                f"events: {runs}; tags there: {tags or 'none'}); log with "
                "keras.callbacks.TensorBoard(log_dir=logdir) in model.fit"
            )
        return found

    @staticmethod
    def log_name(run: str) -> str:
        return f"logdir/{run}" if run else "logdir"


@pytest.fixture(scope="module")
def main_run(submission):
    rng = np.random.default_rng(11)
    return Run(
        submission,
        rng,
        shape=(12, 12, 1),
        n=48,
        what="log_training(logdir, x, y, epochs=3)",
        epochs=3,
    )


@pytest.fixture(scope="module")
def other_run(submission):
    rng = np.random.default_rng(12)
    what = (
        "log_training(logdir, x, y, epochs=1, batch_size=8, validation_split=0.25, "
        "n_images=2) on 10x10x3 images"
    )
    return Run(
        submission,
        rng,
        shape=(10, 10, 3),
        n=32,
        what=what,
        epochs=1,
        batch_size=8,
        validation_split=0.25,
        n_images=2,
    )


@pytest.mark.points(3)
def test_training_scalars_every_epoch(main_run):
    for tag in SCALARS:
        steps = sorted(main_run.series("train", tag))
        expect(
            steps == [0, 1, 2],
            f"{main_run.what}: {tag} in logdir/train was logged at steps {steps}, expected "
            "one value per epoch (steps [0, 1, 2])",
        )


@pytest.mark.points(3)
def test_validation_scalars_every_epoch(main_run):
    for tag in SCALARS:
        steps = sorted(main_run.series("validation", tag))
        expect(
            steps == [0, 1, 2],
            f"{main_run.what}: {tag} in logdir/validation was logged at steps {steps}, "
            "expected [0, 1, 2] (train with validation_split so validation is logged)",
        )


@pytest.mark.points(3)
def test_history_matches_the_logs(main_run):
    history = main_run.history
    what = main_run.what
    expect(
        isinstance(history, dict),
        f"{what}: returned {type(history).__name__}, expected history.history (a dict)",
    )
    for key, run, tag in (
        ("loss", "train", "epoch_loss"),
        ("val_loss", "validation", "epoch_loss"),
    ):
        values = history.get(key)
        expect(
            isinstance(values, list) and len(values) == 3,
            f"{what}: the returned history's {key!r} is {values!r:.100}, expected 3 values",
        )
        logged = main_run.series(run, tag)
        wanted = [logged[s] for s in sorted(logged)]
        expect(
            np.allclose(np.asarray(values, dtype=float), wanted, rtol=1e-3, atol=1e-4),
            f"{what}: the returned {key} {np.round(values, 4).tolist()} differs from the "
            f"logged {tag} {np.round(wanted, 4).tolist()}: return the history of this training",
        )


def check_samples(run: Run, count: int) -> None:
    images = [s for s in run.log.images if s.tag == "samples" or s.tag.endswith("/samples")]
    if not images:
        tags = sorted({s.tag for s in run.log.images}) or ["none"]
        fail(
            f"{run.what}: no image summary named 'samples' in the log directory (image tags "
            f"found: {tags}); write it with tf.summary.image under a writer on logdir/images"
        )
    summary = images[-1]
    expect(
        summary.run == "images",
        f"{run.what}: the 'samples' images are in {Run.log_name(summary.run)}, expected "
        "logdir/images",
    )
    expect(summary.step == 0, f"{run.what}: the samples were logged at step {summary.step}, not 0")
    expect(
        len(summary.pngs) == count,
        f"{run.what}: the summary holds {len(summary.pngs)} image(s), expected {count}",
    )
    for i, png in enumerate(summary.pngs):
        pixels = decode_png(png, run.what).astype(float)
        want = np.round(run.x[i] * 255.0)
        expect(
            pixels.shape == want.shape,
            f"{run.what}: image {i} has shape {pixels.shape}, expected {want.shape}",
        )
        expect(
            float(np.abs(pixels - want).max()) <= 1.0,
            f"{run.what}: image {i} of the summary is not x[{i}] (log the first "
            f"{count} images of x, as floats in [0, 1])",
        )


@pytest.mark.points(3)
def test_sample_images(main_run):
    check_samples(main_run, 4)


@pytest.mark.points(3)
def test_arguments_used(other_run):
    """epochs, validation_split and n_images are honoured, on 3-channel images."""
    for run, tag in (("train", "epoch_accuracy"), ("validation", "epoch_loss")):
        steps = sorted(other_run.series(run, tag))
        expect(
            steps == [0],
            f"{other_run.what}: {tag} in logdir/{run} at steps {steps}, expected [0]",
        )
    check_samples(other_run, 2)
    # validation_split=0.25 of 32 images holds out the last 8: training sees the other 24,
    # 3 batches of 8. Keras's TensorBoard callback logs the optimizer's step count with
    # each validation (`evaluation_loss_vs_iterations`); 4 steps means the held-out
    # images were trained on too. A log written by hand has no such tag: nothing to check.
    steps = other_run.log.series("validation", "evaluation_loss_vs_iterations")
    expect(
        not steps or sorted(steps) == [3],
        f"{other_run.what}: training ran {sorted(steps)[-1] if steps else 0} steps in the "
        "epoch, expected 3 (the 24 images left after holding out 25% for validation, in "
        "batches of 8); train on the images that are not held out",
    )
