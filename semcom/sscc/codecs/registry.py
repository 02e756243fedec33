"""The codecs an SSCC system may name (``CODECS``), built-in and plug-in, and :func:`build_codec`."""

from __future__ import annotations

from semcom.errors import SemcomError
from semcom.registry import Registry
from semcom.sscc.codecs.avif import AvifCodec, avif_available
from semcom.sscc.codecs.base import HEADER_MODES, ImageCodec
from semcom.sscc.codecs.bpg import BpgCodec
from semcom.sscc.codecs.hevc_intra import HeifCodec
from semcom.sscc.codecs.jpeg import JpegCodec
from semcom.sscc.codecs.webp import WebpCodec

__all__ = ["CODECS", "build_codec"]

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
