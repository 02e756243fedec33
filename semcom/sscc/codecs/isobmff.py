"""A minimal ISOBMFF (ISO/IEC 14496-12) reader for HEIF and AVIF files: the container, then the stream.

The HEIF and AVIF codecs write files of one image item whose one extent is the whole ``mdat`` box,
which comes last. :meth:`Container.parse` cuts such a file into its constant head and the coded
stream, and :meth:`Container.join` puts a head and a stream of any length back together (the two
length fields that depend on the stream are rewritten). Any other layout is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from semcom.errors import SemcomError
from semcom.sscc.codecs.base import CodecDecodeError

__all__ = ["Container"]


@dataclass(frozen=True)
class Container:
    """A HEIF/AVIF file cut into its constant head and the coded stream (the mdat contents).

    ``head`` ends with the mdat box header. The fields that depend on the stream length (the mdat
    box size and the item's iloc extent length) are at ``length_fields`` as (offset, size, bias):
    field value = len(stream) + bias.
    """

    head: bytes
    length_fields: tuple[tuple[int, int, int], ...]

    @classmethod
    def parse(cls, data: bytes) -> tuple[Container, bytes]:
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
