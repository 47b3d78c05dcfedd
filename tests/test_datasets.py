"""autograder.datasets on real files: Debian's Fashion-MNIST, the shared MNIST test set.

No test touches the network: the `offline` fixture replaces Keras' downloader with one
that fails, and points every system location at empty temporary folders.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from autograder import datasets
from autograder.datasets import DIGESTS, Digest, load_dataset, parse_idx
from autograder.exceptions import DatasetUnavailable

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
SHARED = datasets.shared_mnist_dirs()
SHARED_MNIST = SHARED[0] if SHARED else None
IDX = list(datasets.IDX_FILES.values())

needs_fashion = pytest.mark.skipif(
    not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
needs_mnist_test = pytest.mark.skipif(
    SHARED_MNIST is None, reason="no shared/datasets/mnist folder above this checkout"
)


def _no_network(name):
    raise OSError(f"network disabled in tests ({name})")


@pytest.fixture(autouse=True)
def fresh_cache():
    datasets.clear_cache()
    yield
    datasets.clear_cache()


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Nothing local but what a test puts there, and a downloader that fails."""
    monkeypatch.setattr(datasets, "_download", _no_network)
    monkeypatch.setattr(datasets, "DEBIAN_DIRS", {})
    monkeypatch.setattr(datasets, "shared_mnist_dirs", lambda starts=None: [])
    keras_datasets = tmp_path / "keras" / "datasets"
    monkeypatch.setattr(datasets, "keras_cache_dirs", lambda: [keras_datasets])
    monkeypatch.delenv("AUTOGRADER_DATA_DIR", raising=False)
    monkeypatch.delenv("AUTOGRADER_OFFLINE", raising=False)
    return keras_datasets


def link_files(src: Path, dest: Path, names) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        (dest / name).symlink_to(src / name)
    return dest


# -- real data ------------------------------------------------------------------------------


@needs_fashion
def test_fashion_mnist_from_the_debian_package(monkeypatch):
    monkeypatch.delenv("AUTOGRADER_DATA_DIR", raising=False)
    ds = load_dataset("fashion_mnist", download=False)
    assert ds.x_train.shape == (60_000, 28, 28) and ds.x_test.shape == (10_000, 28, 28)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert ds.y_train[:5].tolist() == [9, 0, 0, 3, 0]  # ankle boot, T-shirt, ...
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert str(DEBIAN_FASHION) in ds.source and ds.note == ""
    assert ds.input_shape == (28, 28, 1) and ds.num_classes == 10
    assert not ds.x_train.flags.writeable  # shared by every grading in the process
    assert load_dataset("fashion_mnist", download=False) is ds  # cached


@needs_mnist_test
def test_mnist_falls_back_to_a_deterministic_split_of_the_test_set(offline, monkeypatch):
    monkeypatch.setattr(datasets, "shared_mnist_dirs", lambda starts=None: [SHARED_MNIST])
    ds = load_dataset("mnist")
    assert ds.x_train.shape == (8_000, 28, 28) and ds.x_test.shape == (2_000, 28, 28)
    assert "test-set split" in ds.source
    assert "MNIST training images not found" in ds.note and "8,000" in ds.note
    # The two parts are exactly the official test set, shuffled by a fixed seed.
    full = parse_idx(gzip.decompress((SHARED_MNIST / "t10k-images-idx3-ubyte.gz").read_bytes()))
    rows = sorted(r.tobytes() for r in np.concatenate([ds.x_train, ds.x_test]))
    assert rows == sorted(r.tobytes() for r in full)
    datasets.clear_cache()
    again = load_dataset("mnist")
    assert np.array_equal(again.x_test, ds.x_test) and np.array_equal(again.y_train, ds.y_train)


def test_shared_mnist_is_found_walking_up(tmp_path):
    folder = tmp_path / "shared" / "datasets" / "mnist"
    folder.mkdir(parents=True)
    deep = tmp_path / "main" / "a" / "b"
    deep.mkdir(parents=True)
    # The nearest one comes first (a machine may hold others further up, e.g. /tmp/shared).
    assert datasets.shared_mnist_dirs([deep])[0] == folder


@needs_mnist_test
def test_mnist_without_train_images_and_no_split_says_what_is_missing(offline, monkeypatch):
    monkeypatch.setattr(datasets, "shared_mnist_dirs", lambda starts=None: [SHARED_MNIST])
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("mnist", allow_test_split=False)
    msg = str(info.value)
    assert f"{SHARED_MNIST} (shared folder): missing train-images-idx3-ubyte.gz" in msg
    assert "allow_test_split=True" in msg
    assert "network disabled in tests" in msg  # the downloader was tried, and failed


# -- nothing local --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_offline_with_nothing_local_says_which_files_go_where(offline, tmp_path, name):
    data_dir = tmp_path / "data"
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset(name, data_dir=data_dir)
    msg = str(info.value)
    assert f"The {name} data set is not available: no local copy" in msg
    assert "Keras' download failed (OSError: network disabled in tests" in msg
    folder = datasets.FOLDER_NAMES[name][0]
    assert f"{data_dir / folder}/ (the data_dir argument)" in msg
    assert f"<dir>/{folder}/ with AUTOGRADER_DATA_DIR=<dir>" in msg
    assert str(offline) in msg  # Keras' cache
    if name == "cifar10":
        assert "cifar-10-python.tar.gz" in msg and "data_batch_5, test_batch" in msg
    else:
        for stem in IDX:
            assert f"{stem}.gz" in msg


def test_offline_env_and_download_off(offline, monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOGRADER_OFFLINE", "1")
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setattr(datasets, "_download", lambda name: pytest.fail("download attempted"))
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("fashion_mnist")
    assert "downloading is off" in str(info.value)
    assert f"{tmp_path / 'd' / 'fashion_mnist'}/ ($AUTOGRADER_DATA_DIR)" in str(info.value)


def test_unknown_name():
    with pytest.raises(DatasetUnavailable, match="unknown data set 'svhn'"):
        load_dataset("svhn")


def test_download_result_is_used(offline, monkeypatch):
    x = np.zeros((4, 28, 28), np.uint8)
    arrays = {"train_images": x, "train_labels": np.arange(4)}
    arrays |= {"test_images": x[:2], "test_labels": np.arange(2)}
    monkeypatch.setattr(datasets, "_download", lambda name: (arrays, f"Keras downloader ({name})"))
    ds = load_dataset("mnist")
    assert ds.source == "Keras downloader (mnist)" and ds.x_train.shape == (4, 28, 28)


# -- local folders and verification --------------------------------------------------------


@needs_fashion
def test_data_dir_subfolder_wins_and_env_dir_holds_files_directly(offline, tmp_path, monkeypatch):
    names = [f"{s}.gz" for s in IDX]
    link_files(DEBIAN_FASHION, tmp_path / "data" / "fashion_mnist", names)
    ds = load_dataset("fashion_mnist", data_dir=tmp_path / "data")
    assert ds.source == f"{tmp_path / 'data' / 'fashion_mnist'} (data_dir)"
    datasets.clear_cache()
    env_dir = link_files(DEBIAN_FASHION, tmp_path / "env", names)
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", str(env_dir))
    assert load_dataset("fashion_mnist").source == f"{env_dir} (AUTOGRADER_DATA_DIR)"


@needs_fashion
def test_keras_cache_layout(offline):
    link_files(DEBIAN_FASHION, offline / "fashion-mnist", [f"{s}.gz" for s in IDX])
    ds = load_dataset("fashion_mnist")
    assert ds.source == f"{offline / 'fashion-mnist'} (Keras cache)"


@needs_mnist_test
@needs_fashion
def test_another_data_sets_files_are_skipped_not_used(offline, tmp_path, monkeypatch):
    """MNIST's files (same names) in a folder searched for Fashion-MNIST are passed over."""
    env_dir = link_files(SHARED_MNIST, tmp_path / "env", ["t10k-images-idx3-ubyte.gz"])
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", str(env_dir))
    monkeypatch.setattr(datasets, "DEBIAN_DIRS", {"fashion_mnist": (DEBIAN_FASHION,)})
    ds = load_dataset("fashion_mnist")
    assert "Debian package" in ds.source


@needs_mnist_test
def test_checksum_mismatch_names_the_file(offline, tmp_path):
    folder = link_files(SHARED_MNIST, tmp_path / "data" / "mnist", ["t10k-images-idx3-ubyte.gz"])
    bad = folder / "t10k-labels-idx1-ubyte.gz"
    labels = bytearray(gzip.decompress((SHARED_MNIST / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels[100] = (labels[100] + 1) % 10  # one flipped label
    bad.write_bytes(gzip.compress(bytes(labels)))
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("mnist", data_dir=tmp_path / "data")
    msg = str(info.value)
    assert msg.startswith(f"{bad}: checksum mismatch")
    assert DIGESTS[("mnist", "t10k-labels-idx1-ubyte")].md5 in msg
    assert "replace it with the official file" in msg


@needs_mnist_test
def test_uncompressed_idx_files_are_verified_by_content(offline, tmp_path):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        raw = gzip.decompress((SHARED_MNIST / f"{stem}.gz").read_bytes())
        (folder / stem).write_bytes(raw)
    ds = load_dataset("mnist", data_dir=tmp_path / "data")
    assert ds.x_train.shape == (8_000, 28, 28)


def test_parse_idx_rejects_bad_headers():
    with pytest.raises(DatasetUnavailable, match="not an IDX file"):
        parse_idx(b"PK\x03\x04" + bytes(20), "x")
    header = b"\x00\x00\x08\x01" + (5).to_bytes(4, "big")
    assert parse_idx(header + bytes(range(5))).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(DatasetUnavailable, match="size does not match"):
        parse_idx(header + bytes(4))


@needs_mnist_test
def test_mnist_npz_is_checked_then_read_without_pickle(offline, tmp_path, monkeypatch):
    ds = load_dataset("mnist", data_dir=SHARED_MNIST)
    path = tmp_path / "data" / "mnist.npz"
    path.parent.mkdir()
    buf = io.BytesIO()
    np.savez(buf, x_train=ds.x_train, y_train=ds.y_train, x_test=ds.x_test, y_test=ds.y_test)
    path.write_bytes(buf.getvalue())
    datasets.clear_cache()
    with pytest.raises(DatasetUnavailable, match=r"mnist\.npz: checksum mismatch"):
        load_dataset("mnist", data_dir=tmp_path / "data")
    sha = hashlib.sha256(buf.getvalue()).hexdigest()
    monkeypatch.setitem(DIGESTS, ("mnist", "mnist.npz"), Digest(sha256=sha))
    got = load_dataset("mnist", data_dir=tmp_path / "data")
    assert got.x_train.shape == (8_000, 28, 28) and got.note == ""


# -- CIFAR-10 ---------------------------------------------------------------------------------


def _fake_cifar_batch(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    batch = {
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"labels": rng.integers(0, 10, n).tolist(),
    }
    return pickle.dumps(batch, protocol=2)


def test_cifar_batches_parse_after_their_checksums(offline, tmp_path, monkeypatch):
    folder = tmp_path / "data" / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, name in enumerate((*datasets.CIFAR_TRAIN, datasets.CIFAR_TEST)):
        raw = _fake_cifar_batch(3, i)
        (folder / name).write_bytes(raw)
        md5 = hashlib.md5(raw, usedforsecurity=False).hexdigest()
        monkeypatch.setitem(DIGESTS, ("cifar10", name), Digest(md5=md5))
    ds = load_dataset("cifar10", data_dir=tmp_path / "data")
    assert ds.x_train.shape == (15, 32, 32, 3) and ds.x_test.shape == (3, 32, 32, 3)
    assert ds.input_shape == (32, 32, 3)
    first = pickle.loads((folder / "data_batch_1").read_bytes())[b"data"][0]
    assert np.array_equal(ds.x_train[0], first.reshape(3, 32, 32).transpose(1, 2, 0))


def test_cifar_batch_unpickler_builds_only_arrays():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(DatasetUnavailable, match="refusing to build"):
        datasets._cifar_batch(pickle.dumps({b"data": Evil()}), "evil batch")


def test_real_cifar10_when_present(monkeypatch):
    monkeypatch.setattr(datasets, "_download", _no_network)
    try:
        ds = load_dataset("cifar10", download=False)
    except DatasetUnavailable:
        pytest.skip("CIFAR-10 is not available offline here")
    assert ds.x_train.shape == (50_000, 32, 32, 3) and ds.x_test.shape == (10_000, 32, 32, 3)
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
