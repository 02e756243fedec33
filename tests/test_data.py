"""Dataset readers on small files written here in the official formats."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from semcom.data import load_dataset, mnist_sample_indices
from semcom.data.download import download_file
from semcom.data.formats import write_cifar10_batch, write_idx
from semcom.errors import DatasetError


def _write_mnist(root: Path, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    (root / "mnist").mkdir(parents=True)
    for prefix in ("train", "t10k"):
        write_idx(root / "mnist" / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return images, labels


def test_mnist_idx_round_trip(tmp_path: Path) -> None:
    images, labels = _write_mnist(tmp_path)
    ds = load_dataset("mnist", "test", root=tmp_path, download=False)
    assert ds.shape == (1, 28, 28) and len(ds) == 12
    assert np.array_equal(ds.pixels[:, 0].numpy(), images)
    assert np.array_equal(ds.labels.numpy(), labels)
    x = ds.images()
    assert x.dtype.is_floating_point and 0 <= x.min() and x.max() <= 1
    assert len(load_dataset("mnist", "train", root=tmp_path, subset=5)) == 5


def test_truncated_idx_is_a_clear_error(tmp_path: Path) -> None:
    _write_mnist(tmp_path)
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DatasetError, match="truncated"):
        load_dataset("mnist", "test", root=tmp_path, download=False)
    path.write_bytes(path.read_bytes()[:50])  # a cut gzip stream
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        load_dataset("mnist", "test", root=tmp_path, download=False)


def test_missing_files_name_what_and_where(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist", "test", root=tmp_path, download=False)
    msg = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and str(tmp_path) in msg and "SEMCOM_DATA" in msg


def test_cifar10_binary(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (7, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, 7, dtype=np.uint8)
    d = tmp_path / "cifar-10-batches-bin"
    d.mkdir()
    write_cifar10_batch(d / "test_batch.bin", pixels, labels)
    ds = load_dataset("cifar10", "test", root=tmp_path, download=False)
    assert ds.shape == (3, 32, 32) and np.array_equal(ds.pixels.numpy(), pixels)
    assert ds.classes[0] == "airplane"
    # one byte short of a whole record
    (d / "test_batch.bin").write_bytes((d / "test_batch.bin").read_bytes()[:-1])
    with pytest.raises(DatasetError, match="truncated"):
        load_dataset("cifar10", "test", root=tmp_path, download=False)


def test_download_checksum_mismatch_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"not the file you want")
    dest = tmp_path / "out" / "file.gz"
    with pytest.raises(DatasetError, match="checksum mismatch"):
        download_file([src.as_uri()], dest, md5="0" * 32)
    assert not dest.exists() and not list(dest.parent.glob("*.part"))


def test_download_ok_and_offline_message(tmp_path: Path) -> None:
    import hashlib

    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    dest = tmp_path / "out" / "file.gz"
    download_file([src.as_uri()], dest, md5=hashlib.md5(b"payload").hexdigest())
    assert dest.read_bytes() == b"payload"
    with pytest.raises(DatasetError, match="could not download"):
        download_file([(tmp_path / "absent").as_uri()], tmp_path / "x", md5="0" * 32)


def test_offline_sample() -> None:
    ds = load_dataset("mnist-sample", subset=20)
    assert len(ds) == 20 and ds.shape == (1, 28, 28)
    assert ds.labels[:10].tolist() == list(range(10))  # interleaved digits: any prefix is balanced
    full = load_dataset("mnist-sample")
    assert len(full) == 5000 and np.bincount(full.labels.numpy()).tolist() == [500] * 10
    with pytest.raises(DatasetError, match="evaluation set only"):
        load_dataset("mnist-sample", "train")


def test_sample_indices_are_first_500_per_digit() -> None:
    labels = np.repeat(np.arange(10), 600)[np.random.default_rng(0).permutation(6000)]
    idx = mnist_sample_indices(labels)
    assert len(idx) == 5000 and np.all(np.bincount(labels[idx]) == 500)
    for d in range(10):
        assert np.array_equal(np.sort(idx[labels[idx] == d]), np.flatnonzero(labels == d)[:500])


def test_unknown_dataset_and_split() -> None:
    with pytest.raises(DatasetError, match="available"):
        load_dataset("imagenet")
    with pytest.raises(DatasetError, match="split"):
        load_dataset("mnist", "val")


def test_batches_cover_everything_once(tmp_path: Path) -> None:
    _write_mnist(tmp_path, n=10)
    ds = load_dataset("mnist", "test", root=tmp_path)
    import torch

    seen = torch.cat([lab for _, lab in ds.batches(3, shuffle=True, generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == sorted(ds.labels.tolist())
    assert ds.mean_image().shape == (1, 28, 28)


def test_without_mnist_sample_drops_the_first_500_of_each_digit() -> None:
    from semcom.data import ImageDataset, without_mnist_sample

    labels = np.tile(np.arange(10), 600)  # 600 of each digit, interleaved
    digits = [str(d) for d in range(10)]
    ds = ImageDataset.from_numpy("mnist", "train", np.zeros((6000, 1, 28, 28), np.uint8), labels, digits)
    rest = without_mnist_sample(ds)
    assert len(rest) == 1000 and int(rest.indices.min()) == 5000  # the last 100 of each digit
    with pytest.raises(ValueError, match="MNIST training split only"):
        without_mnist_sample(load_dataset("mnist-sample", "test", subset=10))
