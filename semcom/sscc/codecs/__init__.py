"""Classic image codecs for the separate source-channel coding (SSCC) baseline.

Every codec sits behind one small abstract base class, :class:`ImageCodec`: it turns an image tensor
into the bytes that the digital link must carry, and those bytes back into an image. ``CODECS`` names
them (``semcom list codecs``) and :func:`build_codec` builds one by name.

Modules
-------
- :mod:`~semcom.sscc.codecs.base`: :class:`ImageCodec`, :class:`CodecDecodeError`, the header modes.
- One module per codec: :mod:`~semcom.sscc.codecs.jpeg` (``jpeg``), :mod:`~semcom.sscc.codecs.webp`
  (``webp``), :mod:`~semcom.sscc.codecs.hevc_intra` (``hevc-intra``), :mod:`~semcom.sscc.codecs.avif`
  (``avif``), :mod:`~semcom.sscc.codecs.bpg` (``bpg``).
- The stream readers they use: :mod:`~semcom.sscc.codecs.jpeg_scan` (a strict baseline-JPEG scan
  check), :mod:`~semcom.sscc.codecs.isobmff` (the HEIF/AVIF container) and
  :mod:`~semcom.sscc.codecs.isobmff_codec` (the payload handling HEIF and AVIF share).
- :mod:`~semcom.sscc.codecs.registry`: ``CODECS`` and :func:`build_codec`.

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

  See ``docs/codecs.md`` for what each codec strips and the sizes that leaves.
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

from semcom.sscc.codecs.avif import AvifCodec, avif_available
from semcom.sscc.codecs.base import HEADER_MODES, CodecDecodeError, ImageCodec
from semcom.sscc.codecs.bpg import BpgCodec
from semcom.sscc.codecs.cache import EncodeCache
from semcom.sscc.codecs.hevc_intra import HeifCodec
from semcom.sscc.codecs.jpeg import JpegCodec
from semcom.sscc.codecs.registry import CODECS, build_codec
from semcom.sscc.codecs.webp import WebpCodec

__all__ = [
    "CODECS",
    "HEADER_MODES",
    "AvifCodec",
    "BpgCodec",
    "CodecDecodeError",
    "EncodeCache",
    "HeifCodec",
    "ImageCodec",
    "JpegCodec",
    "WebpCodec",
    "avif_available",
    "build_codec",
]
