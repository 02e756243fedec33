"""The contract every image codec of the SSCC baseline keeps: :class:`ImageCodec`.

A codec turns an image tensor into the bytes the digital link must carry, and those bytes back into
an image. The base class converts between tensors and Pillow images, checks the quality and shape,
and caches the receiver's *templates* (the constants rebuilt by the receiver in ``headers="payload"``
mode, see :mod:`semcom.sscc.codecs`); a subclass only writes and reads whole files and says which
part of a file is constant.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from PIL import Image

from semcom.errors import SemcomError
from semcom.sscc.codecs.cache import EncodeCache

__all__ = [
    "HEADER_MODES",
    "CodecDecodeError",
    "ImageCodec",
    "Shape",
    "check_opened_size",
    "reference_image",
    "template_mismatch",
]

HEADER_MODES: tuple[str, ...] = ("payload", "full")
"""Header accounting modes: ``"payload"`` (only what a link must send) or ``"full"`` (whole file)."""

_MODES = {1: "L", 3: "RGB"}


class CodecDecodeError(SemcomError):
    """A payload could not be decoded into an image of the agreed shape."""


Shape = tuple[int, int, int]
"""An image shape ``(C, H, W)``."""


class ImageCodec(ABC):
    """A lossy image codec with an integer quality knob and explicit header accounting.

    Subclasses set the class attributes and implement :meth:`_encode_file`, :meth:`_decode_file`
    and, for ``headers="payload"``, :meth:`_make_template`, :meth:`_strip` and :meth:`_rebuild`.

    Args:
        headers: ``"payload"`` (default) counts only what a link must send; constant headers,
            tables and containers are rebuilt by the receiver from the agreed (shape, quality).
            ``"full"`` counts the whole file.

    Attributes:
        name: registry name, e.g. ``"jpeg"``.
        description: one line for ``semcom list``.
        quality_range: ``(min, max)`` quality, both inclusive; higher is better.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    quality_range: ClassVar[tuple[int, int]] = (0, 100)

    # Receiver templates, shared by all instances: (class, C, H, W, quality) -> template.
    _templates: ClassVar[dict[tuple, object]] = {}
    _templates_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, headers: str = "payload") -> None:
        if headers not in HEADER_MODES:
            raise ValueError(f"headers must be one of {HEADER_MODES}, got {headers!r}")
        self._headers = headers
        self.encode_cache: EncodeCache | None = None  # a run's shared memory of encodes (see cache.py)

    @property
    def accounting(self) -> str:
        """Header accounting used by :meth:`encode`: ``"payload"`` or ``"full"``."""
        return self._headers

    def __repr__(self) -> str:
        return f"{type(self).__name__}(headers={self._headers!r})"

    def cache_key(self) -> str:
        """Everything besides the image and the quality that the payload depends on."""
        return repr(self)

    def same_encoding_quality(self, quality: int) -> int:
        """The quality whose encode gives the same bytes as ``quality`` for every image (itself here).

        A codec whose quality knob maps several values onto one encoder setting returns one
        representative of each group, so that a run's encode cache encodes each setting once.
        """
        return quality

    # -- public API --------------------------------------------------------------------------

    def encode(self, image: torch.Tensor, quality: int) -> bytes:
        """Encode one image.

        Args:
            image: float tensor ``[C, H, W]`` in [0, 1], ``C`` in {1, 3}.
            quality: integer in :attr:`quality_range`; higher is better.

        Returns:
            The payload: the bytes counted against the bit budget (see :attr:`accounting`).
        """
        quality = self._check_quality(quality)
        if self.encode_cache is not None:
            return self.encode_cache.encode(self.cache_key(), image, self.same_encoding_quality(quality),
                                            self._encode_payload)
        return self._encode_payload(image, quality)

    def _encode_payload(self, image: torch.Tensor, quality: int) -> bytes:
        pil = _to_pil(image)
        data = self._encode_file(pil, quality)
        if self._headers == "full":
            return data
        shape = (len(pil.getbands()), pil.height, pil.width)
        return self._strip(data, self._template(shape, quality))

    def decode(self, payload: bytes, shape: Sequence[int], quality: int) -> torch.Tensor:
        """Decode one payload.

        Args:
            payload: bytes from :meth:`encode` (possibly damaged by the link).
            shape: the agreed ``(C, H, W)``.
            quality: the agreed quality the payload was encoded with.

        Returns:
            float32 tensor ``[C, H, W]`` in [0, 1].

        Raises:
            CodecDecodeError: the payload cannot be decoded into an image of ``shape``, or
                ``quality`` is outside :attr:`quality_range` (a quality signalled in-band may
                arrive damaged).
        """
        shape = _check_shape(shape)
        try:
            quality = self._check_quality(quality)
        except ValueError as exc:
            raise CodecDecodeError(str(exc)) from None
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
        payload = bytes(payload)
        # The template depends only on agreed constants: a failure to build it is not the payload's.
        template = None if self._headers == "full" else self._template(shape, quality)
        try:
            data = payload if template is None else self._rebuild(payload, template)
            pil = self._decode_file(data, shape)
        except CodecDecodeError:
            raise
        except Exception as exc:  # any decoder failure is a decode failure, by contract
            raise CodecDecodeError(f"{self.name}: undecodable payload ({type(exc).__name__}: {exc})") from exc
        return _from_pil(pil, shape, self.name)

    @classmethod
    def clear_templates(cls) -> None:
        """Forget all cached receiver templates (they are rebuilt on next use)."""
        with cls._templates_lock:
            cls._templates.clear()

    # -- helpers for subclasses --------------------------------------------------------------

    def _check_quality(self, quality: int) -> int:
        lo, hi = self.quality_range
        if isinstance(quality, bool) or not isinstance(quality, int | np.integer):
            raise TypeError(f"{self.name}: quality must be an int, got {type(quality).__name__}")
        if not lo <= int(quality) <= hi:
            raise ValueError(f"{self.name}: quality {quality} outside {lo}..{hi}")
        return int(quality)

    def _template(self, shape: Shape, quality: int) -> object:
        key = (type(self), *shape, quality)
        template = self._templates.get(key)
        if template is None:
            reference = reference_image(shape)
            template = self._make_template(self._encode_file(reference, quality), shape, quality)
            with self._templates_lock:
                self._templates[key] = template
        return template

    @abstractmethod
    def _encode_file(self, image: Image.Image, quality: int) -> bytes:
        """The whole file for a Pillow image of mode ``"L"`` or ``"RGB"``."""

    @abstractmethod
    def _decode_file(self, data: bytes, shape: Shape) -> Image.Image:
        """A Pillow image from a whole file; may raise anything (wrapped by :meth:`decode`)."""

    def _make_template(self, reference_file: bytes, shape: Shape, quality: int) -> object:
        """The constants the receiver needs, from the file of the reference image."""
        raise NotImplementedError(f"{self.name} has no payload mode; use headers='full'")

    def _strip(self, data: bytes, template: object) -> bytes:
        """The payload of a whole file; raises SemcomError if its constant part is not the template's."""
        raise NotImplementedError(f"{self.name} has no payload mode; use headers='full'")

    def _rebuild(self, payload: bytes, template: object) -> bytes:
        """The whole file from a payload and the template (inverse of :meth:`_strip`)."""
        raise NotImplementedError(f"{self.name} has no payload mode; use headers='full'")


# ----------------------------------------------------------------------------------------------
# Tensor <-> Pillow, and helpers for subclasses
# ----------------------------------------------------------------------------------------------


def _check_shape(shape: Sequence[int]) -> Shape:
    try:
        c, h, w = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be (C, H, W), got {shape!r}") from None
    if c not in _MODES or h < 1 or w < 1:
        raise ValueError(f"shape must be (C, H, W) with C in (1, 3) and H, W >= 1, got {shape!r}")
    return (c, h, w)


def _to_pil(image: torch.Tensor) -> Image.Image:
    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        raise ValueError("image must be a tensor of shape [C, H, W]")
    c = _check_shape(tuple(image.shape))[0]
    x = image.detach().to("cpu", torch.float32)
    if not torch.isfinite(x).all():
        raise ValueError("image has NaN or infinite pixels")
    pixels = (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if c == 1:
        return Image.fromarray(np.ascontiguousarray(pixels[:, :, 0]), "L")
    return Image.fromarray(np.ascontiguousarray(pixels), "RGB")


def _from_pil(image: Image.Image, shape: Shape, name: str) -> torch.Tensor:
    c, h, w = shape
    if image.size != (w, h):
        raise CodecDecodeError(f"{name}: decoded size {image.size} differs from the agreed {(w, h)}")
    try:
        image = image.convert(_MODES[c])
        pixels = np.asarray(image, dtype=np.uint8)
    except Exception as exc:
        raise CodecDecodeError(f"{name}: undecodable payload ({type(exc).__name__}: {exc})") from exc
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()


def reference_image(shape: Shape) -> Image.Image:
    """A fixed smooth image of ``shape``: the receiver templates are encodings of it (its pixels never
    reach a payload)."""
    c, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = [
        128 + 100 * np.sin(xx / max(w, 1) * 3.0 + yy / max(h, 1) * 2.0),
        128 + 100 * np.cos(yy / max(h, 1) * 4.0),
        64 + 128 * (xx + yy) / max(w + h - 2, 1),
    ]
    pixels = np.stack(planes[:c], axis=-1).clip(0, 255).astype(np.uint8)
    if c == 1:
        return Image.fromarray(pixels[:, :, 0], "L")
    return Image.fromarray(pixels, "RGB")


def check_opened_size(size: tuple[int, int], shape: Shape, name: str) -> None:
    """Raise :class:`CodecDecodeError` unless an opened stream's ``(width, height)`` is the agreed one.

    Called before the pixels are decoded, so a corrupt header cannot make the decoder allocate a huge
    image.
    """
    if tuple(size) != (shape[2], shape[1]):
        raise CodecDecodeError(f"{name}: stream says {size[0]}x{size[1]}, agreed {shape[2]}x{shape[1]}")


def template_mismatch(name: str, what: str) -> SemcomError:
    """The error for an encoded file whose constant part differs from the receiver's template."""
    return SemcomError(
        f"{name}: {what} differs from the receiver's template for this shape and quality, so payload "
        "accounting would not be decodable; use headers='full' (please report this)"
    )
