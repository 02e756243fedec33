"""Lossy WebP (VP8) through Pillow (libwebp); payload mode sends the VP8 frame without its framing."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from semcom.errors import SemcomError
from semcom.sscc.codecs.base import CodecDecodeError, ImageCodec, Shape, check_opened_size, template_mismatch

__all__ = ["WebpCodec"]


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
        check_opened_size(image.size, shape, self.name)
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
            raise template_mismatch(self.name, "the VP8 key-frame header")
        return frame[:3] + frame[10:]

    def _rebuild(self, payload: bytes, template: object) -> bytes:
        assert isinstance(template, _WebpTemplate)
        if len(payload) < 4:
            raise CodecDecodeError("webp: payload shorter than the VP8 frame tag")
        frame = payload[:3] + template.frame_constants + payload[3:]
        chunk = b"VP8 " + len(frame).to_bytes(4, "little") + frame + b"\x00" * (len(frame) & 1)
        return b"RIFF" + (4 + len(chunk)).to_bytes(4, "little") + b"WEBP" + chunk
