"""Image data sets for the accuracy question: MNIST, Fashion-MNIST and CIFAR-10, local first.

`load_dataset(name)` looks in these places, in this order, and uses the first one
that holds the complete data set:

1. the `data_dir` argument: `<data_dir>/<name>/` or the files directly in `<data_dir>`;
2. `$AUTOGRADER_DATA_DIR` (one folder, or several joined with `os.pathsep`), same layout;
3. Debian's packaged copy: `/usr/share/datasets/fashion-mnist/` (package dataset-fashion-mnist);
4. for MNIST, a `shared/datasets/mnist/` folder found by walking up from the current
   directory and from this package (it holds only the official test set and the
   training labels);
5. Keras' cache (`$KERAS_HOME` or `~/.keras`, then `/tmp/.keras`): `datasets/mnist.npz`,
   `datasets/fashion-mnist/*.gz`, `datasets/cifar-10-batches-py*/`;
6. Keras' downloader (`keras.datasets.<name>.load_data()`), unless `download=False` or
   `$AUTOGRADER_OFFLINE=1`.

Every file is verified against the digests of the official files in `DIGESTS`
before it is parsed; a mismatch raises DatasetUnavailable naming the file. IDX
files are identified by the SHA-256 of their uncompressed content, so the official
`.gz`, a recompressed `.gz` (Debian's copies carry no file name in their gzip
header, so their bytes differ from Zalando's while their content is the same) and
an uncompressed file are all accepted; the official `.gz` MD5 is accepted too.
CIFAR-10 batches are Python pickles: they are unpickled only after their MD5
matched, and with an unpickler that builds nothing but numpy arrays and plain data.

When MNIST's training images are nowhere to be found but its test set is, and
`allow_test_split` is true, the 10,000 test images are split deterministically
(seeded permutation: 8,000 train / 2,000 test) and `Dataset.note` says so.
Nothing local and no download: DatasetUnavailable, whose message lists exactly
which files to put where.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autograder.exceptions import DatasetUnavailable

NAMES = ("mnist", "fashion_mnist", "cifar10")
NUM_CLASSES = 10
SPLIT_SEED = 20_240_501
SPLIT_TRAIN = 8_000
MAX_FILE_BYTES = 256 << 20

# Sub-folder names tried under a data folder, per data set.
FOLDER_NAMES = {
    "mnist": ("mnist", "MNIST"),
    "fashion_mnist": ("fashion_mnist", "fashion-mnist", "FashionMNIST"),
    "cifar10": ("cifar10", "cifar-10", "CIFAR10"),
}
DEBIAN_DIRS = {"fashion_mnist": (Path("/usr/share/datasets/fashion-mnist"),)}
SHARED_MNIST = Path("shared") / "datasets" / "mnist"

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = "test_batch"
CIFAR_ARCHIVES = ("cifar-10-python.tar.gz", "cifar-10-batches-py-target_archive")


@dataclass(frozen=True)
class Digest:
    """Known digests of one official file; any one that matches identifies it."""

    md5: str | None = None  # of the file as published (.gz for IDX files)
    sha256: str | None = None  # of the file as published
    content_sha256: str | None = None  # of the uncompressed content (IDX files)


# Sources: MNIST - LeCun et al.'s published files (MD5s as listed by torchvision and in
# shared/datasets/mnist/README.md); Fashion-MNIST - Zalando's README (MD5) and the SHA-256
# of the uncompressed IDX files, which Debian's dataset-fashion-mnist copies reproduce;
# mnist.npz and the CIFAR-10 archive - the SHA-256 that Keras' own loaders check;
# CIFAR-10 batches - the MD5s published with the data set (also used by torchvision).
DIGESTS: dict[tuple[str, str], Digest] = {
    ("mnist", "train-images-idx3-ubyte"): Digest(
        md5="f68b3c2dcbeaaa9fbdd348bbdeb94873",
        sha256="440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        content_sha256="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    ("mnist", "train-labels-idx1-ubyte"): Digest(
        md5="d53e105ee54ea40749a09fcbcd1e9432",
        sha256="3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        content_sha256="65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    ("mnist", "t10k-images-idx3-ubyte"): Digest(
        md5="9fb629c4189551a2d022fa330f9573f3",
        sha256="8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        content_sha256="0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    ("mnist", "t10k-labels-idx1-ubyte"): Digest(
        md5="ec29112dd5afa0611ce80d1b7f02629c",
        sha256="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        content_sha256="ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
    ("mnist", "mnist.npz"): Digest(
        sha256="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    ),
    ("fashion_mnist", "train-images-idx3-ubyte"): Digest(
        md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        content_sha256="c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    ("fashion_mnist", "train-labels-idx1-ubyte"): Digest(
        md5="25c81989df183df01b3e8a0aad5dffbe",
        content_sha256="bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    ("fashion_mnist", "t10k-images-idx3-ubyte"): Digest(
        md5="bef4ecab320f06d8554ea6380940ec79",
        content_sha256="5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    ("fashion_mnist", "t10k-labels-idx1-ubyte"): Digest(
        md5="bb300cfdad3c16e7a12a480ee83cd310",
        content_sha256="0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
    ("cifar10", "cifar-10-python.tar.gz"): Digest(
        md5="c58f30108f718f92721af3b95e74349a",
        sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    ),
    ("cifar10", "data_batch_1"): Digest(md5="c99cafc152244af753f735de768cd75f"),
    ("cifar10", "data_batch_2"): Digest(md5="d4bba439e000b95fd0a9bffe97cbabec"),
    ("cifar10", "data_batch_3"): Digest(md5="54ebc095f3ab1f0389bbae665268c751"),
    ("cifar10", "data_batch_4"): Digest(md5="634d18415352ddfa80567beed471001a"),
    ("cifar10", "data_batch_5"): Digest(md5="482c414d41f54cd18b22e5b47cb7c3cb"),
    ("cifar10", "test_batch"): Digest(md5="40351d587109b95175f43aff81a1287e"),
}


@dataclass(frozen=True, eq=False)  # arrays: compare them with np.array_equal, not ==
class Dataset:
    """One data set, split; images uint8 (N,28,28) or (N,32,32,3), labels int64 (N,).

    The arrays are read-only: the same Dataset is shared by every grading in a process.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    note: str = ""

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of one image, as a model takes it."""
        shape = self.x_train.shape[1:]
        return (shape[0], shape[1], shape[2] if len(shape) == 3 else 1)

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES


@dataclass
class _Found:
    """What one place held: some of train/test images/labels, and what was missing."""

    place: str
    arrays: dict[str, np.ndarray]
    missing: list[str]

    @property
    def complete(self) -> bool:
        return all(k in self.arrays for k in IDX_FILES)

    @property
    def has_test(self) -> bool:
        return "test_images" in self.arrays and "test_labels" in self.arrays


_CACHE: dict[tuple, Dataset] = {}
_LOCK = threading.Lock()


def clear_cache() -> None:
    _CACHE.clear()


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    allow_test_split: bool = True,
    download: bool | None = None,
) -> Dataset:
    """Load `name` ("mnist", "fashion_mnist", "cifar10") from the first place that has it.

    `download=None` means: try Keras' downloader unless $AUTOGRADER_OFFLINE is set.
    Results are cached per process (keyed by the folders searched).
    """
    if name not in NAMES:
        raise DatasetUnavailable(
            f"unknown data set {name!r}; the autograder knows {', '.join(NAMES)}"
        )
    if download is None:
        download = os.environ.get("AUTOGRADER_OFFLINE", "").strip() in ("", "0")
    places = _places(name, data_dir)
    key = (name, tuple(str(p) for _, p in places), allow_test_split, download)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        dataset = _load(name, places, allow_test_split, download, data_dir)
        _CACHE[key] = dataset
        return dataset


# -- where to look -----------------------------------------------------------------------


def _data_dirs(base: Path, name: str) -> list[Path]:
    dirs = [base / sub for sub in FOLDER_NAMES[name]] + [base]
    if name == "cifar10":  # the extracted archive's folder, inside any of those
        dirs = [d for folder in dirs for d in (folder, folder / CIFAR_FOLDER)]
    return dirs


def keras_cache_dirs() -> list[Path]:
    """Keras' dataset cache folders, as keras.utils.get_file picks them."""
    homes = []
    if env := os.environ.get("KERAS_HOME"):
        homes.append(Path(env))
    homes += [Path("~/.keras").expanduser(), Path("/tmp/.keras")]
    return [h / "datasets" for h in dict.fromkeys(homes)]


def shared_mnist_dirs(starts: Iterable[Path] | None = None) -> list[Path]:
    """`shared/datasets/mnist` folders found walking up from the cwd and this package."""
    if starts is None:
        starts = [Path.cwd(), Path(__file__).resolve().parent]
    found: list[Path] = []
    for start in starts:
        for folder in [start, *start.parents]:
            for candidate in (folder / SHARED_MNIST, folder.parent / SHARED_MNIST):
                if candidate.is_dir() and candidate not in found:
                    found.append(candidate)
    return found


def _places(name: str, data_dir) -> list[tuple[str, Path]]:
    """(label, folder) pairs to search, in order; only folders that exist."""
    places: list[tuple[str, Path]] = []
    if data_dir is not None:
        places += [("data_dir", p) for p in _data_dirs(Path(data_dir), name)]
    env = os.environ.get("AUTOGRADER_DATA_DIR", "")
    for part in filter(None, env.split(os.pathsep)):
        places += [("AUTOGRADER_DATA_DIR", p) for p in _data_dirs(Path(part), name)]
    places += [("Debian package", p) for p in DEBIAN_DIRS.get(name, ())]
    if name == "mnist":
        places += [("shared folder", p) for p in shared_mnist_dirs()]
    for cache in keras_cache_dirs():
        if name == "fashion_mnist":
            places.append(("Keras cache", cache / "fashion-mnist"))
        elif name == "cifar10":
            places += [
                ("Keras cache", cache / "cifar-10-batches-py-target" / CIFAR_FOLDER),
                ("Keras cache", cache / CIFAR_FOLDER),
            ]
        places.append(("Keras cache", cache))
    seen: set[Path] = set()
    out = []
    for label, path in places:
        if path.is_dir() and path.resolve() not in seen:
            seen.add(path.resolve())
            out.append((label, path))
    return out


# -- loading ------------------------------------------------------------------------------


def _load(name, places, allow_test_split, download, data_dir) -> Dataset:
    test_only: _Found | None = None
    looked: list[str] = []
    for label, folder in places:
        try:
            found = _read_folder(name, folder, f"{folder} ({label})")
        except _OtherDataset:
            continue  # e.g. MNIST's files in a folder searched for Fashion-MNIST
        if found is None:
            continue
        if found.complete:
            return _finish(name, found.arrays, found.place)
        looked.append(f"{found.place}: missing {', '.join(found.missing)}")
        if test_only is None and found.has_test:
            test_only = found
    download_error = ""
    if download:
        try:
            arrays, source = _download(name)
        except DatasetUnavailable:
            raise  # a downloaded file failed verification
        except Exception as exc:  # noqa: BLE001 - any failure means "not downloadable now"
            download_error = f"{type(exc).__name__}: {str(exc)[:200]}"
        else:
            return _finish(name, arrays, source)
    if test_only is not None and name == "mnist" and allow_test_split:
        return _test_split(name, test_only)
    reasons = ["incomplete copies: " + "; ".join(looked) if looked else "no local copy"]
    if not download:
        reasons.append("downloading is off ($AUTOGRADER_OFFLINE or download=False)")
    elif download_error:
        reasons.append(f"Keras' download failed ({download_error})")
    if test_only is not None and name == "mnist":
        reasons.append(
            f"the test set in {test_only.place} is enough with allow_test_split=True "
            "(it is then split 8,000/2,000)"
        )
    head = f"The {name} data set is not available: " + "; ".join(reasons)
    raise DatasetUnavailable(head + ". " + what_to_put_where(name, data_dir))


def _finish(name: str, arrays: dict[str, np.ndarray], source: str, note: str = "") -> Dataset:
    def frozen(a: np.ndarray, dtype) -> np.ndarray:
        a = np.ascontiguousarray(a, dtype=dtype)
        a.flags.writeable = False
        return a

    x_train, x_test = arrays["train_images"], arrays["test_images"]
    y_train = arrays["train_labels"].reshape(-1)
    y_test = arrays["test_labels"].reshape(-1)
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise DatasetUnavailable(f"{name} from {source}: images and labels differ in number")
    if max(y_train.max(initial=0), y_test.max(initial=0)) >= NUM_CLASSES:
        raise DatasetUnavailable(f"{name} from {source}: labels outside 0-9")
    return Dataset(
        name=name,
        x_train=frozen(x_train, np.uint8),
        y_train=frozen(y_train, np.int64),
        x_test=frozen(x_test, np.uint8),
        y_test=frozen(y_test, np.int64),
        source=source,
        note=note,
    )


def _test_split(name: str, found: _Found) -> Dataset:
    x, y = found.arrays["test_images"], found.arrays["test_labels"]
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    train, test = np.sort(order[:SPLIT_TRAIN]), np.sort(order[SPLIT_TRAIN:])
    note = (
        f"MNIST training images not found; using a deterministic split of the official "
        f"{len(x):,}-image test set from {found.place}: {len(train):,} images to train on, "
        f"{len(test):,} held out to test (seed {SPLIT_SEED})"
    )
    arrays = {
        "train_images": x[train],
        "train_labels": y[train],
        "test_images": x[test],
        "test_labels": y[test],
    }
    return _finish(name, arrays, f"{found.place}, test-set split", note)


def _read_folder(name: str, folder: Path, place: str) -> _Found | None:
    if name == "cifar10":
        return _read_cifar(folder, place)
    arrays: dict[str, np.ndarray] = {}
    if name == "mnist" and (folder / "mnist.npz").is_file():
        return _Found(place, _read_npz(folder / "mnist.npz"), [])
    missing = []
    any_file = False
    for key, stem in IDX_FILES.items():
        path = next((p for p in (folder / f"{stem}.gz", folder / stem) if p.is_file()), None)
        if path is None:
            missing.append(f"{stem}.gz")
            continue
        any_file = True
        arrays[key] = _read_idx(name, stem, path)
    if not any_file:
        return None
    return _Found(place, arrays, missing)


def _read_bytes(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DatasetUnavailable(f"{path}: {size} bytes, too large to be the official file")
    return path.read_bytes()


def _mismatch(path: Path, digest: Digest, got: dict[str, str]) -> DatasetUnavailable:
    expected = [
        f"{kind} {value}"
        for kind, value in (
            ("MD5", digest.md5),
            ("SHA-256", digest.sha256),
            ("SHA-256 of the uncompressed content", digest.content_sha256),
        )
        if value
    ]
    return DatasetUnavailable(
        f"{path}: checksum mismatch ({', '.join(f'{k} {v}' for k, v in got.items())}; "
        f"the official file has {' or '.join(expected)}). The file is damaged or not the "
        f"official one: delete it, or replace it with the official file"
    )


class _OtherDataset(Exception):
    """A file that is the official file of another data set (e.g. MNIST's in a shared folder)."""


def _verify(name: str, stem: str, path: Path, raw: bytes, content: bytes | None = None) -> None:
    """Raise DatasetUnavailable unless `raw` (or its uncompressed `content`) is official."""
    md5 = hashlib.md5(raw, usedforsecurity=False).hexdigest()
    sha = hashlib.sha256(raw).hexdigest()
    content_sha = sha if content is None or content is raw else hashlib.sha256(content).hexdigest()

    def matches(d: Digest) -> bool:
        return md5 == d.md5 or sha == d.sha256 or content_sha == d.content_sha256

    digest = DIGESTS[(name, stem)]
    if matches(digest):
        return
    if any(matches(d) for (other, s), d in DIGESTS.items() if other != name and s == stem):
        raise _OtherDataset(str(path))
    got = {"MD5": md5, "SHA-256": sha}
    if content_sha != sha:
        got["SHA-256 of the uncompressed content"] = content_sha
    raise _mismatch(path, digest, got)


def _read_idx(name: str, stem: str, path: Path) -> np.ndarray:
    raw = _read_bytes(path)
    content = raw
    if raw[:2] == b"\x1f\x8b":
        try:
            content = gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise DatasetUnavailable(f"{path}: not a valid gzip file ({exc})") from None
    _verify(name, stem, path, raw, content)
    return parse_idx(content, str(path))


def parse_idx(data: bytes, what: str = "IDX data") -> np.ndarray:
    """An IDX file's uint8 array (magic 0x0000080N, N big-endian int32 dimensions)."""
    if len(data) < 8 or data[0:3] != b"\x00\x00\x08":
        raise DatasetUnavailable(f"{what}: not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(dims)):
        raise DatasetUnavailable(f"{what}: size does not match its header {dims}")
    return np.frombuffer(data, np.uint8, offset=offset).reshape(dims)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    raw = _read_bytes(path)
    _verify("mnist", "mnist.npz", path, raw)
    with np.load(io.BytesIO(raw), allow_pickle=False) as f:
        return {
            "train_images": f["x_train"],
            "train_labels": f["y_train"],
            "test_images": f["x_test"],
            "test_labels": f["y_test"],
        }


# -- CIFAR-10 -----------------------------------------------------------------------------


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Builds numpy arrays, dicts, lists, bytes and numbers: nothing else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 carry bytes
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to build {module}.{name}")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def _cifar_batch(raw: bytes, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    except Exception as exc:  # noqa: BLE001 - any malformed batch is unusable
        raise DatasetUnavailable(f"{what}: not a CIFAR-10 batch ({exc})") from None
    return images, labels


def _cifar_arrays(batches: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    return {
        "train_images": np.concatenate([batches[b][0] for b in CIFAR_TRAIN]),
        "train_labels": np.concatenate([batches[b][1] for b in CIFAR_TRAIN]),
        "test_images": batches[CIFAR_TEST][0],
        "test_labels": batches[CIFAR_TEST][1],
    }


def _read_cifar(folder: Path, place: str) -> _Found | None:
    for archive in CIFAR_ARCHIVES:
        if (folder / archive).is_file():
            return _Found(place, _read_cifar_archive(folder / archive), [])
    names = (*CIFAR_TRAIN, CIFAR_TEST)
    present = [b for b in names if (folder / b).is_file()]
    if not present:
        return None
    missing = [b for b in names if b not in present]
    if missing:
        return _Found(place, {}, missing)
    batches = {}
    for b in present:
        raw = _read_bytes(folder / b)
        _verify("cifar10", b, folder / b, raw)
        batches[b] = _cifar_batch(raw, str(folder / b))
    return _Found(place, _cifar_arrays(batches), [])


def _read_cifar_archive(path: Path) -> dict[str, np.ndarray]:
    raw = _read_bytes(path)
    _verify("cifar10", "cifar-10-python.tar.gz", path, raw)
    batches = {}
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
        for b in (*CIFAR_TRAIN, CIFAR_TEST):
            member = tar.extractfile(f"{CIFAR_FOLDER}/{b}")
            if member is None:
                raise DatasetUnavailable(f"{path}: {b} is missing from the archive")
            data = member.read()
            _verify("cifar10", b, Path(f"{path}:{CIFAR_FOLDER}/{b}"), data)
            batches[b] = _cifar_batch(data, f"{path}:{b}")
    return _cifar_arrays(batches)


# -- download and the error message -------------------------------------------------------


def _download(name: str) -> tuple[dict[str, np.ndarray], str]:
    """Keras' downloader (it fills Keras' cache); tests replace this to stay offline."""
    import keras  # deferred: importing Keras costs seconds

    loader = {
        "mnist": keras.datasets.mnist,
        "fashion_mnist": keras.datasets.fashion_mnist,
        "cifar10": keras.datasets.cifar10,
    }[name]
    (x_train, y_train), (x_test, y_test) = loader.load_data()
    # Prefer the copy Keras just cached, verified like any other local copy.
    for label, folder in _places(name, None):
        if label == "Keras cache":
            found = _read_folder(name, folder, f"{folder} (Keras download)")
            if found is not None and found.complete:
                return found.arrays, found.place
    arrays = {
        "train_images": x_train,
        "train_labels": y_train,
        "test_images": x_test,
        "test_labels": y_test,
    }
    return arrays, f"Keras downloader ({name})"


def what_to_put_where(name: str, data_dir=None) -> str:
    """The files a data set needs and the folders they may go in."""
    folder = FOLDER_NAMES[name][0]
    keras_cache = keras_cache_dirs()[0]
    if name == "cifar10":
        files = (
            "cifar-10-python.tar.gz (the official archive, SHA-256 "
            f"{DIGESTS[('cifar10', 'cifar-10-python.tar.gz')].sha256}) or its extracted "
            f"folder {CIFAR_FOLDER}/ ({', '.join(CIFAR_TRAIN)}, {CIFAR_TEST})"
        )
        cache = f"{keras_cache}/ (Keras' cache)"
    else:
        files = "the four official IDX files " + ", ".join(f"{s}.gz" for s in IDX_FILES.values())
        if name == "mnist":
            files += " (or Keras' mnist.npz)"
        sub = "fashion-mnist/" if name == "fashion_mnist" else ""
        cache = f"{keras_cache}/{sub} (Keras' cache)"
    where = []
    if data_dir is not None:
        where.append(f"{Path(data_dir) / folder}/ (the data_dir argument)")
    env = os.environ.get("AUTOGRADER_DATA_DIR")
    where.append(
        f"{Path(env.split(os.pathsep)[0]) / folder}/ ($AUTOGRADER_DATA_DIR)"
        if env
        else f"<dir>/{folder}/ with AUTOGRADER_DATA_DIR=<dir>"
    )
    for debian in DEBIAN_DIRS.get(name, ()):
        where.append(f"{debian}/ (sudo apt-get install dataset-fashion-mnist)")
    if name == "mnist":
        where.append("a shared/datasets/mnist/ folder above the current directory")
    where.append(cache)
    return f"Put {files} in one of: " + "; ".join(where)
