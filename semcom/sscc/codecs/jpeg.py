"""Baseline JPEG through Pillow (libjpeg-turbo); payload mode sends only the entropy-coded segment."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from semcom.sscc.codecs.base import ImageCodec, Shape, check_opened_size, template_mismatch
from semcom.sscc.codecs.jpeg_scan import check_jpeg_stream, jpeg_scan_start

__all__ = ["JpegCodec"]


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
        check_jpeg_stream(data, shape)
        image = Image.open(io.BytesIO(data), formats=["JPEG"])
        check_opened_size(image.size, shape, self.name)
        image.load()
        return image

    def _make_template(self, reference_file: bytes, shape: Shape, quality: int) -> _JpegTemplate:
        return _JpegTemplate(reference_file[: jpeg_scan_start(reference_file)])

    def _strip(self, data: bytes, template: object) -> bytes:
        assert isinstance(template, _JpegTemplate)
        start = jpeg_scan_start(data)
        if data[:start] != template.header or data[-2:] != b"\xff\xd9":
            raise template_mismatch(self.name, "the JPEG header")
        return data[start:-2]

    def _rebuild(self, payload: bytes, template: object) -> bytes:
        assert isinstance(template, _JpegTemplate)
        return template.header + payload + b"\xff\xd9"
