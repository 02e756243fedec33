"""Classic image codecs for the separate source-channel coding (SSCC) baseline.

Every codec sits behind one small abstract base class, :class:`ImageCodec`: it turns an image tensor
into the bytes that the digital link must carry, and those bytes back into an image.

Conventions
-----------
- Images are float tensors in [0, 1] of shape ``[C, H, W]`` with ``C = 1`` (coded as 8-bit
  grayscale, Pillow mode ``"L"``) or ``C = 3`` (8-bit RGB). Pixels are rounded to 8 bits before
  coding; decoded images are ``float32`` in [0, 1].
- ``quality`` is an integer in the codec's ``quality_range``; higher is always better (BPG's
  quantiser is mirrored so that this holds).
- Header accounting, chosen when the codec is built:

  * ``headers="payload"`` (default): :meth:`ImageCodec.encode` returns only what a real link has to
    send. Both ends agree in advance on the codec, its quality and the image shape, so everything
    that is constant for (codec, quality, shape) -- JPEG's JFIF/quantisation/Huffman headers, the
    RIFF/VP8 chunk framing of WebP, the HEIF/AVIF container with the HEVC/AV1 parameter sets, the
    BPG magic and picture size -- is left out and rebuilt by the receiver from a *template*: the
    same codec run on a fixed reference image of the same shape at the same quality. Every encode
    checks that its own constant part really equals the template's (else :class:`SemcomError`),
    so the receiver always decodes from exactly the counted bytes plus the agreed constants.
  * ``headers="full"``: the whole file is the payload.

  See ``docs/codecs.md`` for what each codec strips and the measured sizes.
- :meth:`ImageCodec.decode` raises :class:`CodecDecodeError` -- never another exception type -- when
  a payload cannot be decoded. Decoders that conceal errors (libde265 for HEVC, libwebp, dav1d) may
  still return a damaged image for a damaged payload; detecting transmission errors is the job of
  the link's CRC. JPEG payloads are checked strictly: the entropy-coded segment must parse to exactly
  the image's blocks with the agreed Huffman tables, so truncation is always detected.

Example
-------
>>> import torch
>>> from semcom.sscc.codecs import build_codec
>>> codec = build_codec("webp")
>>> x = torch.rand(3, 32, 32)
>>> payload = codec.encode(x, quality=50)
>>> y = codec.decode(payload, (3, 32, 32), quality=50)
>>> y.shape
torch.Size([3, 32, 32])
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import tempfile
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PIL import Image, features

from semcom.errors import SemcomError
from semcom.registry import Registry

__all__ = [
    "CODECS",
    "HEADER_MODES",
    "AvifCodec",
    "BpgCodec",
    "CodecDecodeError",
    "HeifCodec",
    "ImageCodec",
    "JpegCodec",
    "WebpCodec",
    "avif_available",
    "build_codec",
]

HEADER_MODES: tuple[str, ...] = ("payload", "full")
"""Header accounting modes: ``"payload"`` (only what a link must send) or ``"full"`` (whole file)."""

_MODES = {1: "L", 3: "RGB"}


class CodecDecodeError(SemcomError):
    """A payload could not be decoded into an image of the agreed shape."""


Shape = tuple[int, int, int]


# ----------------------------------------------------------------------------------------------
# Base class
# ----------------------------------------------------------------------------------------------


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

    @property
    def accounting(self) -> str:
        """Header accounting used by :meth:`encode`: ``"payload"`` or ``"full"``."""
        return self._headers

    def __repr__(self) -> str:
        return f"{type(self).__name__}(headers={self._headers!r})"

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
        pil = _to_pil(image)
        data = self._encode_file(pil, quality)
        if self._headers == "full":
            return data
        shape = (len(pil.getbands()), pil.height, pil.width)
        return self._strip(data, self._template(shape, quality))

    def decode(self, payload: bytes, shape: Shape, quality: int) -> torch.Tensor:
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
            reference = _reference_image(shape)
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
# Tensor <-> Pillow
# ----------------------------------------------------------------------------------------------


def _check_shape(shape: Shape) -> Shape:
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


def _reference_image(shape: Shape) -> Image.Image:
    """A fixed smooth test image (the template's content never reaches the payload)."""
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


def _check_opened_size(size: tuple[int, int], shape: Shape, name: str) -> None:
    # Checked before pixels are decoded, so a corrupt header cannot make us allocate a huge image.
    if tuple(size) != (shape[2], shape[1]):
        raise CodecDecodeError(f"{name}: stream says {size[0]}x{size[1]}, agreed {shape[2]}x{shape[1]}")


def _mismatch(name: str, what: str) -> SemcomError:
    return SemcomError(
        f"{name}: {what} differs from the receiver's template for this shape and quality, so payload "
        "accounting would not be decodable; use headers='full' (please report this)"
    )


# ----------------------------------------------------------------------------------------------
# JPEG
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _JpegTemplate:
    header: bytes  # SOI .. end of the SOS segment


class JpegCodec(ImageCodec):
    """Baseline JPEG (libjpeg-turbo through Pillow), standard Huffman tables, 4:2:0 chroma.

    Encoder settings are fixed so that, at one quality and shape, every header byte is the same:
    baseline sequential, ``optimize=False`` (the standard Annex K Huffman tables, not per-image
    ones), no restart markers, chroma subsampling 4:2:0 for RGB (as in most JPEG baselines of the
    deep-JSCC literature), the JFIF APP0 segment Pillow always writes.

    Payload mode sends the entropy-coded segment only: everything up to and including the SOS
    segment (JFIF, DQT, SOF0, DHT, SOS: 328 bytes for 28x28 grayscale, 623 for 32x32 RGB) and the
    final EOI marker are left out; the receiver takes them from its template. Decoding first parses
    the entropy-coded segment with the file's Huffman tables and requires exactly the image's blocks
    followed by 1-bit padding; libjpeg itself silently conceals truncation.
    """

    name = "jpeg"
    description = "JPEG baseline (libjpeg-turbo via Pillow), 4:2:0, standard tables"
    quality_range = (1, 100)

    def _encode_file(self, image: Image.Image, quality: int) -> bytes:
        buf = io.BytesIO()
        options: dict = {"quality": quality, "optimize": False, "progressive": False}
        if image.mode == "RGB":
            options["subsampling"] = 2  # 4:2:0
        image.save(buf, "JPEG", **options)
        return buf.getvalue()

    def _decode_file(self, data: bytes, shape: Shape) -> Image.Image:
        _check_jpeg_stream(data, shape)
        image = Image.open(io.BytesIO(data), formats=["JPEG"])
        _check_opened_size(image.size, shape, self.name)
        image.load()
        return image

    def _make_template(self, reference_file: bytes, shape: Shape, quality: int) -> _JpegTemplate:
        return _JpegTemplate(reference_file[: _jpeg_scan_start(reference_file)])

    def _strip(self, data: bytes, template: object) -> bytes:
        assert isinstance(template, _JpegTemplate)
        start = _jpeg_scan_start(data)
        if data[:start] != template.header or data[-2:] != b"\xff\xd9":
            raise _mismatch(self.name, "the JPEG header")
        return data[start:-2]

    def _rebuild(self, payload: bytes, template: object) -> bytes:
        assert isinstance(template, _JpegTemplate)
        return template.header + payload + b"\xff\xd9"


def _jpeg_scan_start(data: bytes) -> int:
    """Offset of the first entropy-coded byte (just after the SOS segment)."""
    if data[:2] != b"\xff\xd8":
        raise CodecDecodeError("jpeg: no SOI marker")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise CodecDecodeError(f"jpeg: marker expected at byte {i}")
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if length < 2:
            raise CodecDecodeError("jpeg: bad segment length")
        i += 2 + length
        if marker == 0xDA:
            if i > len(data):
                break
            return i
    raise CodecDecodeError("jpeg: no SOS segment")


def _check_jpeg_stream(data: bytes, shape: Shape) -> None:
    """Parse a baseline JPEG file's headers and its one scan; raise CodecDecodeError if it is not
    exactly one complete scan of a ``shape`` image followed by EOI.

    Huffman decoding follows ITU-T T.81 F.2.2 (DC: category then magnitude bits; AC: run/size
    symbols, EOB = 0x00, ZRL = 0xF0). Pillow writes no restart markers, so none are accepted.
    """
    fail = CodecDecodeError
    if data[:2] != b"\xff\xd8" or data[-2:] != b"\xff\xd9":
        raise fail("jpeg: missing SOI/EOI marker")
    tables: dict[tuple[int, int], tuple[int, ...]] = {}
    frame: list[tuple[int, int, int]] = []  # (component id, h, v)
    size = (0, 0)
    i = 2
    while True:
        if i + 4 > len(data) or data[i] != 0xFF:
            raise fail(f"jpeg: marker expected at byte {i}")
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        seg = data[i + 4 : i + 2 + length]
        if length < 2 or len(seg) != length - 2:
            raise fail("jpeg: truncated segment")
        i += 2 + length
        if marker == 0xC4:  # DHT
            j = 0
            while j < len(seg):
                if j + 17 > len(seg):
                    raise fail("jpeg: bad DHT")
                tc_th = seg[j]
                counts = seg[j + 1 : j + 17]
                symbols = seg[j + 17 : j + 17 + sum(counts)]
                if len(symbols) != sum(counts):
                    raise fail("jpeg: bad DHT")
                tables[(tc_th >> 4, tc_th & 15)] = _huffman_lookup(bytes(counts), bytes(symbols))
                j += 17 + sum(counts)
        elif marker == 0xC0:  # SOF0, baseline
            if len(seg) < 6 or seg[0] != 8:
                raise fail("jpeg: bad SOF0")
            size = (int.from_bytes(seg[3:5], "big"), int.from_bytes(seg[1:3], "big"))
            frame = [(seg[6 + 3 * k], seg[7 + 3 * k] >> 4, seg[7 + 3 * k] & 15) for k in range(seg[5])]
            if len(seg) != 6 + 3 * len(frame) or not all(1 <= h <= 4 and 1 <= v <= 4 for _, h, v in frame):
                raise fail("jpeg: bad SOF0")
        elif marker == 0xDA:  # SOS
            break
        elif not (marker == 0xDB or 0xE0 <= marker <= 0xEF or marker == 0xFE):  # DQT, APPn, COM
            raise fail(f"jpeg: unexpected marker 0x{marker:02X} (only baseline, no restarts)")
    if size != (shape[2], shape[1]) or len(frame) != shape[0]:
        got, agreed = f"{size[0]}x{size[1]}x{len(frame)}", f"{shape[2]}x{shape[1]}x{shape[0]}"
        raise fail(f"jpeg: stream is {got}, agreed {agreed}")
    n_scan = seg[0] if seg else 0
    if n_scan != len(frame) or len(seg) != 4 + 2 * n_scan:
        raise fail("jpeg: bad SOS")
    by_id = {cid: (h, v) for cid, h, v in frame}
    components = []
    for k in range(n_scan):
        cid, td_ta = seg[1 + 2 * k], seg[2 + 2 * k]
        if cid not in by_id or (0, td_ta >> 4) not in tables or (1, td_ta & 15) not in tables:
            raise fail("jpeg: SOS names a missing component or Huffman table")
        h, v = by_id[cid] if n_scan > 1 else (1, 1)
        components.append((h * v, tables[(0, td_ta >> 4)], tables[(1, td_ta & 15)]))
    width, height = size
    if n_scan > 1:
        hmax = max(h for _, h, _ in frame)
        vmax = max(v for _, _, v in frame)
        n_mcu = -(-width // (8 * hmax)) * -(-height // (8 * vmax))
    else:
        n_mcu = -(-width // 8) * -(-height // 8)

    # Entropy-coded segment -> bit string (byte stuffing undone, no other markers allowed).
    raw = np.frombuffer(data, np.uint8)[i:-2]
    ff = np.flatnonzero(raw[:-1] == 0xFF)
    if (raw[ff + 1] != 0).any() or (raw.size and raw[-1] == 0xFF):
        raise fail("jpeg: marker inside the entropy-coded segment")
    body = np.delete(raw, ff + 1)
    bits = np.unpackbits(body).tobytes().translate(_BIT_CHARS).decode("ascii")
    _decode_scan(bits, n_mcu, components)


_BIT_CHARS = bytes.maketrans(b"\x00\x01", b"01")


@functools.lru_cache(maxsize=16)
def _huffman_lookup(counts: bytes, symbols: bytes) -> tuple[int, ...]:
    """Canonical Huffman code (T.81 Annex C) as a 16-bit peek table: entry = length << 8 | symbol,
    0 where no code matches."""
    table = [0] * 65536
    code = 0
    k = 0
    for length in range(1, 17):
        for _ in range(counts[length - 1]):
            lo, hi = code << (16 - length), (code + 1) << (16 - length)
            if hi > 65536:
                raise CodecDecodeError("jpeg: invalid Huffman table")
            table[lo:hi] = [length << 8 | symbols[k]] * (hi - lo)
            code += 1
            k += 1
        code <<= 1
    return tuple(table)


def _decode_scan(bits: str, n_mcu: int, components: list) -> None:
    """Walk all blocks of one scan (T.81 F.2.2: DC category then magnitude bits; AC run/size symbols,
    EOB = 0x00, ZRL = 0xF0); raise CodecDecodeError unless it ends exactly at the 1-bit padding."""
    pos = 0
    n = len(bits)
    padded = bits + "1" * 16

    def symbol(table: tuple[int, ...]) -> int:
        nonlocal pos
        entry = table[int(padded[pos : pos + 16], 2)]
        if entry == 0:
            raise CodecDecodeError("jpeg: invalid Huffman code")
        pos += entry >> 8
        if pos > n:
            raise CodecDecodeError("jpeg: entropy-coded segment is truncated")
        return entry & 0xFF

    for _ in range(n_mcu):
        for n_blocks, dc, ac in components:
            for _ in range(n_blocks):
                size = symbol(dc)
                if size > 11:
                    raise CodecDecodeError("jpeg: invalid DC category")
                pos += size
                k = 1
                while k < 64:
                    rs = symbol(ac)
                    run, size = rs >> 4, rs & 15
                    if size == 0:
                        if run != 15:
                            break  # EOB
                        k += 16
                    else:
                        k += run + 1
                        pos += size
                if k > 64:
                    raise CodecDecodeError("jpeg: AC coefficients run past the block")
                if pos > n:
                    raise CodecDecodeError("jpeg: entropy-coded segment is truncated")
    rest = bits[pos:]
    if len(rest) >= 8 or "0" in rest:
        raise CodecDecodeError("jpeg: data after the last block of the scan")


# ----------------------------------------------------------------------------------------------
# WebP (VP8 lossy)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _WebpTemplate:
    frame_constants: bytes  # VP8 start code + 14-bit width/height with 2-bit scales (7 bytes)


class WebpCodec(ImageCodec):
    """Lossy WebP (libwebp VP8 through Pillow), default method 4, 4:2:0.

    WebP has no grayscale mode: ``C = 1`` images are coded as RGB with equal channels and turned back
    to grayscale after decoding.

    Payload mode sends the VP8 frame tag (3 bytes: key-frame flag, version, show flag and the size of
    the first partition, which varies) and the partitions. Left out and rebuilt: the RIFF header
    (12 bytes), the ``VP8 `` chunk header (8 bytes, plus a pad byte for odd sizes), and the key-frame
    start code and picture size (7 bytes), 27-28 bytes in all.
    """

    name = "webp"
    description = "WebP lossy (libwebp VP8 via Pillow)"
    quality_range = (0, 100)

    def _encode_file(self, image: Image.Image, quality: int) -> bytes:
        buf = io.BytesIO()
        image.convert("RGB").save(buf, "WEBP", quality=quality, lossless=False, method=4, exact=False)
        return buf.getvalue()

    def _decode_file(self, data: bytes, shape: Shape) -> Image.Image:
        image = Image.open(io.BytesIO(data), formats=["WEBP"])
        _check_opened_size(image.size, shape, self.name)
        image.load()
        return image

    @staticmethod
    def _vp8_frame(data: bytes) -> bytes:
        if len(data) < 30 or data[:4] != b"RIFF" or data[8:16] != b"WEBPVP8 ":
            raise SemcomError("webp: expected a simple lossy file (RIFF/WEBP with one 'VP8 ' chunk)")
        size = int.from_bytes(data[16:20], "little")
        end = 20 + size + (size & 1)
        if end != len(data) or int.from_bytes(data[4:8], "little") != len(data) - 8:
            raise SemcomError("webp: expected exactly one 'VP8 ' chunk")
        return data[20 : 20 + size]

    def _make_template(self, reference_file: bytes, shape: Shape, quality: int) -> _WebpTemplate:
        return _WebpTemplate(self._vp8_frame(reference_file)[3:10])

    def _strip(self, data: bytes, template: object) -> bytes:
        assert isinstance(template, _WebpTemplate)
        frame = self._vp8_frame(data)
        if frame[3:10] != template.frame_constants or frame[0] & 1:
            raise _mismatch(self.name, "the VP8 key-frame header")
        return frame[:3] + frame[10:]

    def _rebuild(self, payload: bytes, template: object) -> bytes:
        assert isinstance(template, _WebpTemplate)
        if len(payload) < 4:
            raise CodecDecodeError("webp: payload shorter than the VP8 frame tag")
        frame = payload[:3] + template.frame_constants + payload[3:]
        chunk = b"VP8 " + len(frame).to_bytes(4, "little") + frame + b"\x00" * (len(frame) & 1)
        return b"RIFF" + (4 + len(chunk)).to_bytes(4, "little") + b"WEBP" + chunk


# ----------------------------------------------------------------------------------------------
# ISOBMFF containers (HEIF, AVIF): one item, one extent, mdat last
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Container:
    """A HEIF/AVIF file cut into its constant head and the coded stream (the mdat contents).

    ``head`` ends with the mdat box header. The fields that depend on the stream length (the mdat
    box size and the item's iloc extent length) are at ``length_fields`` as (offset, size, bias):
    field value = len(stream) + bias.
    """

    head: bytes
    length_fields: tuple[tuple[int, int, int], ...]

    @classmethod
    def parse(cls, data: bytes) -> tuple[_Container, bytes]:
        boxes = _boxes(data, 0, len(data))
        if not boxes or boxes[-1][0] != b"mdat":
            raise SemcomError("isobmff: expected the mdat box last")
        _, mdat_at, mdat_body, mdat_end = boxes[-1]
        if mdat_body - mdat_at != 8 or mdat_end != len(data):
            raise SemcomError("isobmff: expected a plain 32-bit mdat box at the end of the file")
        metas = [b for b in boxes if b[0] == b"meta"]
        if len(metas) != 1:
            raise SemcomError("isobmff: expected one meta box")
        _, _, meta_body, meta_end = metas[0]
        children = _boxes(data, meta_body + 4, meta_end)  # meta is a FullBox
        ilocs = [b for b in children if b[0] == b"iloc"]
        if len(ilocs) != 1:
            raise SemcomError("isobmff: expected one iloc box")
        offset, length_at, length_size = _iloc_single_extent(data, ilocs[0][2], ilocs[0][3])
        stream_len = len(data) - mdat_body
        extent_len = int.from_bytes(data[length_at : length_at + length_size], "big")
        if offset != mdat_body or extent_len != stream_len:
            raise SemcomError("isobmff: the item's extent is not the whole mdat")
        fields = ((mdat_at, 4, 8), (length_at, length_size, 0))
        return cls(_zero_fields(data[:mdat_body], fields), fields), data[mdat_body:]

    def join(self, stream: bytes) -> bytes:
        head = bytearray(self.head)
        for at, size, bias in self.length_fields:
            value = len(stream) + bias
            if value >= 1 << (8 * size):
                raise CodecDecodeError("isobmff: payload too long for the container's length fields")
            head[at : at + size] = value.to_bytes(size, "big")
        return bytes(head) + stream


def _zero_fields(head: bytes, fields: tuple[tuple[int, int, int], ...]) -> bytes:
    out = bytearray(head)
    for at, size, _ in fields:
        out[at : at + size] = bytes(size)
    return bytes(out)


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int, int]]:
    """(type, box start, body start, box end) of the boxes in data[start:end]."""
    out = []
    i = start
    while i < end:
        if i + 8 > end:
            raise SemcomError("isobmff: truncated box header")
        size = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8]
        body = i + 8
        if size == 1:
            size = int.from_bytes(data[i + 8 : i + 16], "big")
            body = i + 16
        elif size == 0:
            size = end - i
        if size < body - i or i + size > end:
            raise SemcomError("isobmff: bad box size")
        out.append((kind, i, body, i + size))
        i += size
    return out


def _iloc_single_extent(data: bytes, body: int, end: int) -> tuple[int, int, int]:
    """ISO/IEC 14496-12 8.11.3: for an iloc with one item and one extent, return
    (absolute data offset, offset of the extent_length field, its size in bytes)."""
    version = data[body]
    i = body + 4
    offset_size, length_size = data[i] >> 4, data[i] & 15
    base_size, index_size = data[i + 1] >> 4, (data[i + 1] & 15 if version in (1, 2) else 0)
    i += 2
    count_size = 2 if version < 2 else 4
    if int.from_bytes(data[i : i + count_size], "big") != 1:
        raise SemcomError("isobmff: expected exactly one item (no thumbnails, alpha, Exif)")
    i += count_size + count_size  # item_count, item_ID
    if version in (1, 2):
        if data[i + 1] & 15:
            raise SemcomError("isobmff: expected construction method 0 (file offset)")
        i += 2
    i += 2  # data_reference_index
    base = int.from_bytes(data[i : i + base_size], "big")
    i += base_size
    if int.from_bytes(data[i : i + 2], "big") != 1:
        raise SemcomError("isobmff: expected exactly one extent")
    i += 2 + index_size
    offset = int.from_bytes(data[i : i + offset_size], "big")
    i += offset_size
    if i + length_size > end or length_size == 0:
        raise SemcomError("isobmff: bad iloc box")
    return base + offset, i, length_size


@dataclass(frozen=True)
class _IsoTemplate:
    container: _Container
    stream_prefix: bytes  # constant start of the coded stream (parameter units, NAL/OBU header)


class _IsoBmffCodec(ImageCodec):
    """Shared payload handling of HEIF and AVIF: container and stream prefix come from a template."""

    @abstractmethod
    def _split_stream(self, stream: bytes) -> tuple[bytes, bytes]:
        """(constant prefix, payload) of the coded stream."""

    @abstractmethod
    def _join_stream(self, prefix: bytes, payload: bytes) -> bytes:
        """Inverse of :meth:`_split_stream`."""

    def _make_template(self, reference_file: bytes, shape: Shape, quality: int) -> _IsoTemplate:
        container, stream = _Container.parse(reference_file)
        return _IsoTemplate(container, self._split_stream(stream)[0])

    def _strip(self, data: bytes, template: object) -> bytes:
        assert isinstance(template, _IsoTemplate)
        container, stream = _Container.parse(data)
        if container != template.container:
            raise _mismatch(self.name, "the container (with its parameter sets)")
        prefix, payload = self._split_stream(stream)
        if prefix != template.stream_prefix:
            raise _mismatch(self.name, "the constant start of the coded stream")
        return payload

    def _rebuild(self, payload: bytes, template: object) -> bytes:
        assert isinstance(template, _IsoTemplate)
        return template.container.join(self._join_stream(template.stream_prefix, payload))


# ----------------------------------------------------------------------------------------------
# HEVC intra in HEIF (BPG's core codec)
# ----------------------------------------------------------------------------------------------


class HeifCodec(_IsoBmffCodec):
    """BPG-class: HEVC intra (BPG's core codec) via pillow-heif/x265.

    x265 through libheif, pillow-heif's quality knob (0..100), chroma 4:2:0 for RGB (BPG's default)
    and 4:0:0 (monochrome) for grayscale; decoding by libde265.

    Payload mode sends the body of the one HEVC slice NAL unit in ``mdat``. Left out and rebuilt:
    the whole container (ftyp; meta with hdlr, iloc, iinf, pitm, iprp with the hvcC box holding the
    VPS/SPS/PPS, colr, ispe, clap, pixi; the mdat header), the 4-byte NAL length prefix and the
    2-byte NAL unit header. The parameter sets depend only on the encoder configuration and the
    shape -- they were found identical across images and even across qualities (the QP is in the
    slice header) -- so the template, made from a reference image at the same shape and quality,
    supplies them; every encode checks this.
    """

    name = "hevc-intra"
    description = "BPG-class: HEVC intra (BPG's core codec) via pillow-heif/x265"
    quality_range = (0, 100)

    def _encode_file(self, image: Image.Image, quality: int) -> bytes:
        import pillow_heif

        buf = io.BytesIO()
        # pools=none: single-threaded x265, 4x faster on these tiny images, deterministic, and no
        # wavefront entry points in the slice header (slightly smaller streams).
        options: dict = {"quality": quality, "save_nclx_profile": True, "enc_params": {"x265:pools": "none"}}
        if image.mode == "RGB":
            options["chroma"] = "420"
        pillow_heif.encode(image.mode, image.size, image.tobytes(), buf, **options)
        return buf.getvalue()

    def _decode_file(self, data: bytes, shape: Shape) -> Image.Image:
        import pillow_heif

        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        _check_opened_size(heif.size, shape, self.name)
        return heif.to_pillow()

    def _split_stream(self, stream: bytes) -> tuple[bytes, bytes]:
        n = int.from_bytes(stream[:4], "big")
        if len(stream) < 6 or n != len(stream) - 4:
            raise SemcomError("hevc-intra: expected exactly one length-prefixed NAL unit in mdat")
        nal_type = (stream[4] >> 1) & 63
        if nal_type > 31:
            raise SemcomError(f"hevc-intra: expected a slice NAL unit, got type {nal_type}")
        return stream[4:6], stream[6:]

    def _join_stream(self, prefix: bytes, payload: bytes) -> bytes:
        return (len(payload) + 2).to_bytes(4, "big") + prefix + payload


# ----------------------------------------------------------------------------------------------
# AVIF (AV1 intra)
# ----------------------------------------------------------------------------------------------


def avif_available() -> bool:
    """Whether this Pillow build can encode AVIF with libaom (and decode AVIF)."""
    try:
        if not features.check("avif"):
            return False
        from PIL import AvifImagePlugin

        return AvifImagePlugin.get_codec_version("aom") is not None
    except Exception:  # pragma: no cover - Pillow without the AVIF plugin
        return False


def _leb128(data: bytes, i: int) -> tuple[int, int]:
    value = 0
    for k in range(8):
        if i >= len(data):
            raise SemcomError("avif: truncated OBU size")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << (7 * k)
        if not byte & 0x80:
            return value, i
    raise SemcomError("avif: OBU size too long")


def _to_leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class AvifCodec(_IsoBmffCodec):
    """AVIF: AV1 intra (libavif with libaom through Pillow), speed 6, one thread, no palette mode.

    Chroma 4:2:0 for RGB and 4:0:0 (monochrome AV1) for grayscale. Pillow's quality 0..100 is
    libavif's quality (100 is lossless).

    Palette mode is switched off (libaom ``enable-palette=0``). DESIGN.md recorded identical pixels at
    every quality on 8-bit grayscale MNIST; the cause is AV1's palette mode: for digits with at most
    8 grey levels (4 of 100 images of the offline sample) libaom codes the image losslessly with a
    palette at *every* quality (same ~100-byte stream from quality 5 to 95), so the quality knob is
    dead and rate matching cannot go below that size. Without palette the knob works on every image
    (tested); other images are unaffected.

    Payload mode sends the body of the one OBU_FRAME in ``mdat``. Left out and rebuilt: the container
    (ftyp, meta with av1C/ispe/pixi/colr, mdat header), the temporal-delimiter OBU, the sequence-header
    OBU (constant for shape and quality: verified on every encode) and the frame OBU's header and
    LEB128 size.
    """

    name = "avif"
    description = "AVIF: AV1 intra (libavif/libaom via Pillow)"
    quality_range = (0, 100)

    def _encode_file(self, image: Image.Image, quality: int) -> bytes:
        buf = io.BytesIO()
        subsampling = "4:0:0" if image.mode == "L" else "4:2:0"
        image.save(buf, "AVIF", quality=quality, subsampling=subsampling, speed=6, max_threads=1,
                   codec="aom", advanced={"enable-palette": "0"})
        return buf.getvalue()

    def _decode_file(self, data: bytes, shape: Shape) -> Image.Image:
        image = Image.open(io.BytesIO(data), formats=["AVIF"])
        _check_opened_size(image.size, shape, self.name)
        image.load()
        return image

    def _split_stream(self, stream: bytes) -> tuple[bytes, bytes]:
        i = 0
        while i < len(stream):
            header = stream[i]
            obu_type = (header >> 3) & 15
            if header & 0x80 or not header & 0x02:
                raise SemcomError("avif: expected OBUs with size fields")
            j = i + 1 + ((header >> 2) & 1)  # optional extension byte
            size, body = _leb128(stream, j)
            if obu_type == 6:  # OBU_FRAME: must be the last OBU
                if body + size != len(stream):
                    raise SemcomError("avif: expected one frame OBU at the end of the stream")
                return stream[:j], stream[body:]
            if obu_type not in (1, 2):  # sequence header, temporal delimiter
                raise SemcomError(f"avif: unexpected OBU type {obu_type}")
            i = body + size
        raise SemcomError("avif: no frame OBU")

    def _join_stream(self, prefix: bytes, payload: bytes) -> bytes:
        return prefix + _to_leb128(len(payload)) + payload


# ----------------------------------------------------------------------------------------------
# BPG (external bpgenc / bpgdec)
# ----------------------------------------------------------------------------------------------

_BPG_MAGIC = b"BPG\xfb"
_BPG_INSTALL = (
    "the BPG tools 'bpgenc' and 'bpgdec' are not on PATH. Install them (a 'libbpg' package where "
    "your distribution has one, or build libbpg from https://bellard.org/bpg/: 'make' then copy "
    "bpgenc and bpgdec onto PATH), or use the 'hevc-intra' codec: BPG's core HEVC intra coder "
    "through pillow-heif, installed with semcom"
)


def _bpg_prefix_length(data: bytes) -> int:
    """Length of the BPG file's magic, format bytes and ue7 width/height (Bellard's BPG spec 1.0)."""
    if data[:4] != _BPG_MAGIC or len(data) < 8:
        raise SemcomError("bpg: not a BPG file")
    i = 6
    for _ in range(2):  # picture_width, picture_height as ue7(32)
        for _ in range(5):
            if i >= len(data):
                raise SemcomError("bpg: truncated header")
            more = data[i] & 0x80
            i += 1
            if not more:
                break
        else:
            raise SemcomError("bpg: bad ue7 field")
    return i


class BpgCodec(ImageCodec):
    """BPG through Fabrice Bellard's ``bpgenc``/``bpgdec`` (subprocess, temporary files).

    ``quality`` = 51 - BPG's ``-q`` quantiser (``-q`` runs 0..51, lower is better), so higher is
    better; other settings are bpgenc's defaults (4:2:0, 8 bits, YCbCr, x265 where built in).
    Grayscale images go in as grayscale PNGs.

    Payload mode leaves out the first bytes of the file that are constant for the shape and
    configuration: the magic (4 bytes), the pixel-format/colour byte pair and the ue7 picture width
    and height (8 to 10 bytes in all), checked against a template on every encode. The rest of BPG's
    own small header (picture data length, compact HEVC header) is counted.

    Args:
        headers: see :class:`ImageCodec`.
        bpgenc, bpgdec: program names or paths.
        timeout: seconds allowed for one run of either program.

    Raises:
        SemcomError: ``bpgenc`` or ``bpgdec`` cannot be found (the message says how to install them).
    """

    name = "bpg"
    description = "BPG via Bellard's bpgenc/bpgdec (must be on PATH)"
    quality_range = (0, 51)

    def __init__(self, headers: str = "payload", bpgenc: str = "bpgenc", bpgdec: str = "bpgdec",
                 timeout: float = 60.0) -> None:
        super().__init__(headers)
        enc, dec = shutil.which(bpgenc), shutil.which(bpgdec)
        if enc is None or dec is None:
            raise SemcomError(f"bpg: {_BPG_INSTALL}")
        self._bpgenc, self._bpgdec, self._timeout = enc, dec, timeout

    def _template(self, shape: Shape, quality: int) -> object:
        # Keyed by the programs too: two installations may write different headers.
        key = (type(self), self._bpgenc, *shape, quality)
        template = self._templates.get(key)
        if template is None:
            reference = self._encode_file(_reference_image(shape), quality)
            template = reference[: _bpg_prefix_length(reference)]
            with self._templates_lock:
                self._templates[key] = template
        return template

    def _run(self, args: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(args, capture_output=True, timeout=self._timeout, check=False)

    def _encode_file(self, image: Image.Image, quality: int) -> bytes:
        with tempfile.TemporaryDirectory(prefix="semcom-bpg-") as tmp:
            src, dst = Path(tmp) / "in.png", Path(tmp) / "out.bpg"
            image.save(src, "PNG")
            done = self._run([self._bpgenc, "-q", str(51 - quality), "-o", str(dst), str(src)])
            if done.returncode != 0 or not dst.exists():
                message = done.stderr.decode(errors="replace").strip()
                raise SemcomError(f"bpg: bpgenc failed (exit {done.returncode}): {message}")
            return dst.read_bytes()

    def _decode_file(self, data: bytes, shape: Shape) -> Image.Image:
        with tempfile.TemporaryDirectory(prefix="semcom-bpg-") as tmp:
            src, dst = Path(tmp) / "in.bpg", Path(tmp) / "out.png"
            src.write_bytes(data)
            done = self._run([self._bpgdec, "-o", str(dst), str(src)])
            if done.returncode != 0 or not dst.exists():
                message = done.stderr.decode(errors="replace").strip()
                raise CodecDecodeError(f"bpg: bpgdec failed (exit {done.returncode}): {message}")
            image = Image.open(dst, formats=["PNG"])
            _check_opened_size(image.size, shape, self.name)
            image.load()
            return image

    def _strip(self, data: bytes, template: object) -> bytes:
        assert isinstance(template, bytes)
        if data[: len(template)] != template or _bpg_prefix_length(data) != len(template):
            raise _mismatch(self.name, "the BPG file prefix")
        return data[len(template) :]

    def _rebuild(self, payload: bytes, template: object) -> bytes:
        assert isinstance(template, bytes)
        return template + payload


# ----------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------

CODECS = Registry("codecs", entry_point_group="semcom.codecs")
"""Image codecs by name: jpeg, webp, hevc-intra, avif (when Pillow has AVIF), bpg (needs bpgenc)."""

CODECS.add("jpeg", JpegCodec, JpegCodec.description)
CODECS.add("webp", WebpCodec, WebpCodec.description)
CODECS.add("hevc-intra", HeifCodec, HeifCodec.description)
if avif_available():
    CODECS.add("avif", AvifCodec, AvifCodec.description)
CODECS.add("bpg", BpgCodec, BpgCodec.description)


def build_codec(name: str, headers: str = "payload") -> ImageCodec:
    """Build the codec registered as ``name`` with the given header accounting.

    Args:
        name: a name in :data:`CODECS` (``semcom list`` shows them).
        headers: ``"payload"`` or ``"full"``, see :class:`ImageCodec`.

    Raises:
        UnknownNameError: no such codec (the message lists the known ones).
        SemcomError: the codec cannot run here (e.g. ``bpg`` without ``bpgenc``/``bpgdec``).
    """
    if headers not in HEADER_MODES:
        raise ValueError(f"headers must be one of {HEADER_MODES}, got {headers!r}")
    codec = CODECS.create(name, headers=headers)
    if not isinstance(codec, ImageCodec):
        raise SemcomError(f"codec '{name}' did not build an ImageCodec (got {type(codec).__name__})")
    return codec
