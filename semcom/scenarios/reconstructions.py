"""The pictures a run keeps: the first few images of the dataset as each receiver rebuilt them.

At every SNR point, :func:`semcom.scenarios.point.evaluate_point` keeps, for each (system, user,
layer), the reconstructions of the first :data:`SAVED_IMAGES` images of the dataset in the first
channel draw (draw 0), quantised to 8 bits, ``round(255 x)``: what a picture shows (the metrics use
the floats). Each point's set travels with its partial result, so that a resumed run writes the same
file as an uninterrupted one; ``semcom run`` then writes all points into
``OUT/reconstructions.safetensors``, and ``semcom plot`` draws the image grid from it
(:func:`semcom.plots.image_grid_figure`).

The file is a safetensors file (read without pickle): uint8 tensors ``original`` ``[N, C, H, W]``
and ``rec-00000``, ``rec-00001``, ... one per entry, and one metadata key ``semcom`` holding JSON:
the format, the run's fingerprint (the same as ``results.json``'s, so a stale file is recognised),
the images' labels, class names and positions in the official split, and per entry its system,
user, layer, SNR point, SNRs and which images were lost (the receiver shows the dataset's mean image
for those). One metadata key only: safetensors writes several in no fixed order, and the file must
be the same, byte for byte, from run to run.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semcom.errors import SemcomError
from semcom.scenarios.results import atomic_write

__all__ = [
    "FORMAT",
    "RECONSTRUCTIONS_NAME",
    "SAVED_IMAGES",
    "SAVED_USERS",
    "Reconstruction",
    "Reconstructions",
    "load_reconstructions",
    "write_reconstructions",
]

#: Images kept per (system, user, layer, point): the first of the dataset.
SAVED_IMAGES = 4
#: Users whose reconstructions are kept: the first of the scenario (a figure shows no more panels).
SAVED_USERS = 16
RECONSTRUCTIONS_NAME = "reconstructions.safetensors"
FORMAT = "semcom-reconstructions/1"
_KEY = "semcom"


@dataclass(frozen=True)
class Reconstruction:
    """What one receiver rebuilt from the kept images at one SNR point.

    Attributes:
        system, user, layer, point: the row of the results table this belongs to.
        snr_db: the user's SNR (Es/N0, dB); sweep_snr_db: that of the first sweeping user (NaN: none).
        pixels: ``[n, C, H, W]`` uint8.
        lost: per image, whether the link failed (the picture is then the dataset's mean image).
    """

    system: str
    user: str
    layer: int
    point: int
    snr_db: float
    sweep_snr_db: float
    pixels: np.ndarray
    lost: tuple[bool, ...]

    def describe(self) -> dict[str, Any]:
        """The entry's fields other than the pixels (JSON-ready; NaN as None)."""
        return {"system": self.system, "user": self.user, "layer": self.layer, "point": self.point,
                "snr_db": _json_float(self.snr_db), "sweep_snr_db": _json_float(self.sweep_snr_db),
                "lost": list(self.lost)}

    @classmethod
    def from_description(cls, doc: dict[str, Any], pixels: np.ndarray) -> Reconstruction:
        return cls(str(doc["system"]), str(doc["user"]), int(doc["layer"]), int(doc["point"]),
                   _float(doc["snr_db"]), _float(doc["sweep_snr_db"]), pixels,
                   tuple(bool(v) for v in doc["lost"]))


@dataclass(frozen=True)
class Reconstructions:
    """The kept images of a run (or of one SNR point) and their reconstructions.

    Attributes:
        originals: the images sent, ``[n, C, H, W]`` uint8.
        labels: their class labels; classes: the class names (index = label).
        indices: their positions in the official split.
        entries: one per (system, user, layer, point), in the order they were made (point by point).
        fingerprint: the run's fingerprint (None for one point not yet saved with a run).
    """

    originals: np.ndarray
    labels: tuple[int, ...]
    classes: tuple[str, ...]
    indices: tuple[int, ...]
    entries: tuple[Reconstruction, ...]
    fingerprint: str | None = None

    def find(self, system: str, user: str, layer: int, point: int) -> Reconstruction | None:
        """The entry of (system, user, layer, point), or None."""
        for entry in self.entries:
            if (entry.system, entry.user, entry.layer, entry.point) == (system, user, layer, point):
                return entry
        return None

    def _head(self) -> dict[str, Any]:
        return {"format": FORMAT, "fingerprint": self.fingerprint, "labels": list(self.labels),
                "classes": list(self.classes), "indices": list(self.indices)}

    # -- inside a partial result (JSON) ----------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, pixels as base64 (how a partial result carries one point's set)."""
        return {**self._head(), "originals": _encode(self.originals),
                "entries": [{**e.describe(), "pixels": _encode(e.pixels)} for e in self.entries]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Reconstructions:
        """The inverse of :meth:`to_json`."""
        entries = tuple(Reconstruction.from_description(e, _decode(e["pixels"])) for e in doc["entries"])
        return cls(_decode(doc["originals"]), tuple(int(v) for v in doc["labels"]),
                   tuple(str(c) for c in doc["classes"]), tuple(int(v) for v in doc["indices"]), entries,
                   doc.get("fingerprint"))

    @classmethod
    def merged(cls, parts: Sequence[Reconstructions], fingerprint: str | None) -> Reconstructions:
        """One set from the points' sets (same images), entries in the order of ``parts``."""
        first = parts[0]
        for part in parts[1:]:
            if part.indices != first.indices or not np.array_equal(part.originals, first.originals):
                raise SemcomError("the SNR points kept different images; run again with --fresh")
        entries = tuple(e for part in parts for e in part.entries)
        return cls(first.originals, first.labels, first.classes, first.indices, entries, fingerprint)


def write_reconstructions(path: Path, recs: Reconstructions) -> Path:
    """Write ``recs`` to ``path`` (a safetensors file, atomically; the same bytes for the same set)."""
    from safetensors.numpy import save

    tensors = {"original": np.ascontiguousarray(recs.originals)}
    described = []
    for i, entry in enumerate(recs.entries):
        key = f"rec-{i:05d}"
        tensors[key] = np.ascontiguousarray(entry.pixels)
        described.append({"key": key, **entry.describe()})
    meta = json.dumps({**recs._head(), "entries": described}, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)

    data = save(tensors, metadata={_KEY: meta})

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    atomic_write(path, write)
    return path


def load_reconstructions(source: str | Path) -> Reconstructions | None:
    """The set saved in a results folder (or the file itself); None when there is none.

    Raises:
        SemcomError: a file that is not a readable set of reconstructions.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(source)
    if path.is_dir():
        path = path / RECONSTRUCTIONS_NAME
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="np") as fh:
            doc = json.loads((fh.metadata() or {})[_KEY])
            if doc.get("format") != FORMAT:
                raise KeyError("format")
            originals = fh.get_tensor("original")
            entries = tuple(Reconstruction.from_description(e, fh.get_tensor(e["key"])) for e in doc["entries"])
    except (OSError, SafetensorError, KeyError, TypeError, ValueError) as exc:
        raise SemcomError(f"{path}: not a readable semcom reconstructions file ({exc})") from None
    return Reconstructions(originals, tuple(doc["labels"]), tuple(doc["classes"]), tuple(doc["indices"]),
                           entries, doc.get("fingerprint"))


def _encode(pixels: np.ndarray) -> dict[str, Any]:
    return {"shape": list(pixels.shape), "uint8": base64.b64encode(pixels.astype(np.uint8).tobytes()).decode()}


def _decode(doc: dict[str, Any]) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(doc["uint8"]), dtype=np.uint8)
    return raw.reshape([int(v) for v in doc["shape"]]).copy()


def _json_float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)
