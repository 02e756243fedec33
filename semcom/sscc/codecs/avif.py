"""AVIF: AV1 intra in a HEIF-style file through Pillow (libavif with libaom to encode)."""

from __future__ import annotations

import io

from PIL import Image, features

from semcom.errors import SemcomError
from semcom.sscc.codecs.base import Shape, check_opened_size
from semcom.sscc.codecs.isobmff_codec import IsoBmffCodec

__all__ = ["AvifCodec", "avif_available"]


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


class AvifCodec(IsoBmffCodec):
    """AVIF: AV1 intra (libavif with libaom through Pillow), speed 6, one thread, no palette mode.

    Chroma 4:2:0 for RGB and 4:0:0 (monochrome AV1) for grayscale. Pillow's quality 0..100 is
    libavif's quality (100 is lossless).

    Palette mode is switched off (libaom ``enable-palette=0``): for 8-bit grayscale digits with at
    most 8 grey levels libaom would otherwise code the image losslessly with a palette at *every*
    quality (the same stream from low to high quality), so the quality knob would be dead and rate
    matching could not go below that size. Without palette the knob works on every image (tested);
    other images are unaffected.

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
        check_opened_size(image.size, shape, self.name)
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
