"""Readers for the official dataset file formats (no pickle anywhere).

* MNIST / Fashion-MNIST: IDX files (gzipped), big-endian header: magic ``0x00000803`` (images,
  dims N, rows, cols) or ``0x00000801`` (labels, dim N), then unsigned bytes.
* CIFAR-10 *binary* version: records of 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B,
  rows in order), 10,000 records per batch file.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from semcom.errors import DatasetError

__all__ = ["read_cifar10_batch", "read_idx", "write_cifar10_batch", "write_idx"]

_IDX_TYPES = {0x08: np.uint8}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into an array of its declared shape."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{path}: cannot read ({exc}); the file is corrupt or truncated, delete it and "
                           "download it again") from None
    if len(raw) < 4:
        raise DatasetError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code not in _IDX_TYPES or not 1 <= ndim <= 4:
        raise DatasetError(f"{path}: not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DatasetError(f"{path}: truncated or padded: header says {dims} = {expected} bytes of data, "
                           f"file has {len(raw) - header}; delete it and download it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an IDX file, gzipped when ``path`` ends in ``.gz``."""
    arr = np.ascontiguousarray(array, dtype=np.uint8)
    data = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)


_CIFAR_RECORD = 1 + 3 * 32 * 32


def read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 binary batch: ``(pixels [N, 3, 32, 32] uint8, labels [N] uint8)``."""
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from None
    if raw.size == 0 or raw.size % _CIFAR_RECORD:
        raise DatasetError(f"{path}: {raw.size} bytes is not a whole number of CIFAR-10 records "
                           f"({_CIFAR_RECORD} bytes each); the file is truncated, delete it and download again")
    rec = raw.reshape(-1, _CIFAR_RECORD)
    labels = rec[:, 0]
    if labels.max() > 9:
        raise DatasetError(f"{path}: label {int(labels.max())} out of range 0..9; not a CIFAR-10 binary batch")
    return rec[:, 1:].reshape(-1, 3, 32, 32), labels


def write_cifar10_batch(path: Path, pixels: np.ndarray, labels: np.ndarray) -> None:
    """Write records in the CIFAR-10 binary layout (for tests and tools)."""
    rec = np.concatenate([np.asarray(labels, np.uint8)[:, None], np.asarray(pixels, np.uint8).reshape(len(labels), -1)],
                         axis=1)
    rec.tofile(path)
