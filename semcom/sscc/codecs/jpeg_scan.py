"""A strict reader of baseline JPEG files (ITU-T T.81): where the scan starts, and whether it is whole.

libjpeg conceals a truncated or damaged entropy-coded segment (it pads the missing blocks), so the
JPEG codec cannot rely on the decoder to notice a damaged payload. :func:`check_jpeg_stream` walks
the headers and Huffman-decodes every block of the one scan, and accepts the file only if the scan
holds exactly the blocks of the agreed image followed by 1-bit padding and EOI.
"""

from __future__ import annotations

import functools

import numpy as np

from semcom.sscc.codecs.base import CodecDecodeError, Shape

__all__ = ["check_jpeg_stream", "jpeg_scan_start"]


def jpeg_scan_start(data: bytes) -> int:
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


def check_jpeg_stream(data: bytes, shape: Shape) -> None:
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
