"""HEVC intra, BPG's core codec, in a HEIF file through pillow-heif (x265 to encode, libde265 to decode)."""

from __future__ import annotations

import io
from typing import ClassVar

import torch
from PIL import Image

from semcom.errors import SemcomError
from semcom.sscc.codecs.base import Shape, _to_pil, check_opened_size
from semcom.sscc.codecs.isobmff_codec import IsoBmffCodec

__all__ = ["HeifCodec"]


class HeifCodec(IsoBmffCodec):
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

    # whether this process's libheif maps qualities two by two onto x265's rate factor (checked once)
    _paired_qualities: ClassVar[bool | None] = None

    def same_encoding_quality(self, quality: int) -> int:
        """libheif's x265 plug-in sets the rate factor to ``(100 - quality) // 2`` (integer division), so
        qualities ``2j - 1`` and ``2j`` give the same bytes; the even one represents both.

        The mapping belongs to libheif, not to semcom: it is checked once per process on a test image
        (twins encode to the same bytes, neighbours across a pair do not); if the check fails every
        quality stands for itself.
        """
        if HeifCodec._paired_qualities is None:
            HeifCodec._paired_qualities = _qualities_pair_up(self)
        return quality + quality % 2 if HeifCodec._paired_qualities else quality

    def _encode_file(self, image: Image.Image, quality: int) -> bytes:
        import pillow_heif

        buf = io.BytesIO()
        # pools=none: single-threaded x265, faster on these tiny images, deterministic, and no
        # wavefront entry points in the slice header (slightly smaller streams).
        options: dict = {"quality": quality, "save_nclx_profile": True, "enc_params": {"x265:pools": "none"}}
        if image.mode == "RGB":
            options["chroma"] = "420"
        pillow_heif.encode(image.mode, image.size, image.tobytes(), buf, **options)
        return buf.getvalue()

    def _decode_file(self, data: bytes, shape: Shape) -> Image.Image:
        import pillow_heif

        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        check_opened_size(heif.size, shape, self.name)
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


def _qualities_pair_up(codec: HeifCodec) -> bool:
    """Whether qualities 2j - 1 and 2j encode to the same bytes and 2j and 2j + 1 do not, on a textured
    test image in both colour modes, at a few points of the range."""
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0, 1, 16)
    for channels in (1, 3):
        texture = torch.rand(channels, 16, 16, generator=g)
        image = (0.25 * (ramp[None, :] + ramp[:, None]) + 0.5 * texture).clamp(0, 1)
        pil = _to_pil(image)
        for even in (10, 50, 90):
            odd_below, odd_above = codec._encode_file(pil, even - 1), codec._encode_file(pil, even + 1)
            same = codec._encode_file(pil, even)
            if same != odd_below or same == odd_above:
                return False
    return True
