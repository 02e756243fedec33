"""The SSCC chain end to end: budgets, outage = mean image, layering, capacity, broadcast MCS."""

from __future__ import annotations

import json

import pytest
import torch

from semcom.channels import build_channel
from semcom.metrics import psnr
from semcom.scenarios.plan import make_plan
from semcom.sscc.link import LdpcQamLink
from semcom.sscc.system import QUALITY_BITS, SsccSystem
from semcom.systems import TransmissionSystem


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Smooth colour images with some texture: the codecs have something to code."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    base = torch.stack([xx, yy, (xx + yy) / 2])
    return (base[None] * torch.rand(6, 3, 1, 1, generator=g) + 0.1 * torch.rand(6, 3, 32, 32, generator=g)).clamp(0, 1)


def _system(images: torch.Tensor, **kw: object) -> SsccSystem:
    defaults: dict[str, object] = {"codec": "jpeg", "mcs": "16QAM-1/2", "layer_symbols": [300, 300],
                                   "mean_image": images.mean(0)}
    defaults.update(kw)
    return SsccSystem(**defaults)  # type: ignore[arg-type]


def test_is_a_transmission_system(images: torch.Tensor) -> None:
    s = _system(images)
    assert isinstance(s, TransmissionSystem) and s.kind == "sscc" and s.num_layers == 2
    assert s.describe()["header_accounting"] == "payload"


def test_high_snr_delivers_and_layers_refine(images: torch.Tensor) -> None:
    s = _system(images, layer_symbols=[150, 450])
    outs = s.receive(s.prepare(images, [30.0]), build_channel("awgn", seed=0), 30.0, resolution=2)
    assert [o.layer for o in outs] == [1, 2]
    assert not outs[0].outage.any() and not outs[1].outage.any()
    p1, p2 = psnr(images, outs[0].images).mean(), psnr(images, outs[1].images).mean()
    assert p1 > 18 and p2 > p1 + 3  # the residual layer adds detail
    # every layer's stream fitted its budget: quality byte and length field included
    cap = 8 * (LdpcQamLink("16QAM-1/2", 150).payload_bytes + LdpcQamLink("16QAM-1/2", 450).payload_bytes)
    assert 0 < outs[1].info["bits_mean"] <= cap


def test_low_snr_is_an_outage_with_the_mean_image(images: torch.Tensor) -> None:
    s = _system(images)
    outs = s.receive(s.prepare(images, [-5.0]), build_channel("awgn", seed=0), -5.0, resolution=2)
    for o in outs:
        assert o.outage.all()
        assert torch.allclose(o.images, images.mean(0).expand_as(images))


def test_nothing_fits_is_an_outage_not_a_crash(images: torch.Tensor) -> None:
    s = _system(images, mcs="4QAM-1/2", layer_symbols=[60])  # 60 symbols: a few bytes, no JPEG fits
    (out,) = s.receive(s.prepare(images, [30.0]), build_channel("awgn", seed=0), 30.0, resolution=1)
    assert out.outage.all() and out.info["bits_mean"] == 0


def test_simulcast_uses_the_best_layer_that_decoded(images: torch.Tensor) -> None:
    s = _system(images, layering="simulcast", layer_symbols=[120, 400])
    outs = s.receive(s.prepare(images, [30.0]), build_channel("awgn", seed=0), 30.0, resolution=2)
    assert psnr(images, outs[1].images).mean() > psnr(images, outs[0].images).mean()


def test_capacity_bound_is_monotone_and_beats_ldpc(images: torch.Tensor) -> None:
    s = _system(images, mcs="capacity", layer_symbols=[400])
    tx = s.prepare(images, [0.0])
    scores, bits = [], []
    for snr in (0.0, 5.0, 10.0, 20.0):
        (out,) = s.receive(tx, build_channel("awgn", seed=0), snr, resolution=1)
        scores.append(float(psnr(images, out.images).mean()))
        bits.append(out.info["bits_mean"])
    assert bits == sorted(bits) and scores == sorted(scores)
    ldpc = _system(images, mcs="16QAM-1/2", layer_symbols=[400])
    (coded,) = ldpc.receive(ldpc.prepare(images, [10.0]), build_channel("awgn", seed=0), 10.0, resolution=1)
    assert scores[2] >= float(psnr(images, coded.images).mean())  # at 10 dB: 1,382 ideal bits vs 784 coded


def test_broadcast_mcs_serves_the_worst_user(images: torch.Tensor) -> None:
    s = _system(images, mcs="adaptive", layer_symbols=[512])
    tx = s.prepare(images, [2.0, 25.0])
    (near,) = s.receive(tx, build_channel("awgn", seed=0), 25.0, resolution=1)
    uni = _system(images, mcs="adaptive", layer_symbols=[512], mode="unicast")
    (alone,) = uni.receive(uni.prepare(images, [2.0, 25.0]), build_channel("awgn", seed=0), 25.0, resolution=1)
    assert near.info["mcs"] != alone.info["mcs"]
    assert psnr(images, alone.images).mean() > psnr(images, near.images).mean()


def test_quality_byte_is_counted(images: torch.Tensor) -> None:
    s = _system(images, layer_symbols=[400])
    link = LdpcQamLink("16QAM-1/2", 400)
    assert s._payload_budget_bits("16QAM-1/2", 400) == 8 * link.payload_bytes - QUALITY_BITS


def test_bad_configuration_fails_early(images: torch.Tensor) -> None:
    with pytest.raises(ValueError):
        _system(images, mcs="5QAM-1/2")
    with pytest.raises(ValueError, match="layering"):
        _system(images, layering="scalable")
    with pytest.raises(ValueError, match="resolution"):
        s = _system(images)
        s.receive(s.prepare(images, [10.0]), build_channel("awgn"), 10.0, resolution=3)


def test_the_encode_cache_changes_no_number(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's codec cache answers repeated (image, quality) encodes from memory: same rows, fewer encodes."""
    from semcom.scenarios import cache as run_cache
    from semcom.scenarios import load_scenario, run_scenario

    sc = load_scenario("quickstart")
    runs = {}
    for setting in ("0", "64"):
        monkeypatch.setenv("SEMCOM_CODEC_CACHE_MB", setting)
        monkeypatch.setattr(run_cache, "_PROCESS_CACHE", None)  # systems built afresh with this setting
        result = run_scenario(sc, quick=True)
        codec = run_cache.process_cache().state(make_plan(sc, quick=True)).systems["jpeg-ldpc"].codec
        runs[setting] = (result.rows, codec.encode_cache)
    assert runs["0"][1] is None
    cache = runs["64"][1]
    assert cache is not None and cache.hits > 0 and cache.misses > 0
    assert json.dumps(runs["0"][0], default=str) == json.dumps(runs["64"][0], default=str)


def test_encode_cache_is_bounded_and_exact() -> None:
    from semcom.sscc.codecs import EncodeCache, build_codec

    codec = build_codec("jpeg")
    images = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    cache = EncodeCache(max_bytes=10_000)
    codec.encode_cache = cache
    first = [codec.encode(img, 50) for img in images]
    again = [codec.encode(img, 50) for img in images]
    assert first == again and cache.hits == 3 and cache.misses == 3
    codec.encode_cache = None
    assert [codec.encode(img, 50) for img in images] == first  # what an uncached encode gives
    small = EncodeCache(max_bytes=max(map(len, first)) + 1)  # room for one payload, never for three
    codec.encode_cache = small
    for img in images:
        codec.encode(img, 50)
        assert small.size_bytes <= small.max_bytes
    assert len(small) < 3  # the least recently used went first
    assert codec.encode(images[-1], 50) == first[-1] and small.hits == 1  # the newest stayed
    other = build_codec("jpeg", headers="full")
    other.encode_cache = small
    assert other.encode(images[-1], 50) != first[-1]  # the settings are part of the key


@pytest.mark.parametrize("channels", [1, 3])
def test_hevc_quality_twins_share_one_cached_encode(channels: int) -> None:
    """libheif maps qualities 2j-1 and 2j onto one x265 rate factor: the cache encodes the pair once, and
    what it returns for either is byte for byte what an uncached encode at that quality gives."""
    from semcom.sscc.codecs import EncodeCache, build_codec

    codec = build_codec("hevc-intra")
    image = torch.rand(channels, 32, 32, generator=torch.Generator().manual_seed(channels))
    uncached = {q: codec.encode(image, q) for q in (0, 1, 2, 35, 36, 37, 99, 100)}
    assert uncached[1] == uncached[2] and uncached[35] == uncached[36] and uncached[99] == uncached[100]
    assert uncached[36] != uncached[37] and uncached[0] != uncached[1]
    assert [codec.same_encoding_quality(q) for q in (0, 1, 2, 35, 36, 37, 99, 100)] == [0, 2, 2, 36, 36, 38, 100, 100]
    codec.encode_cache = EncodeCache()
    cached = {q: codec.encode(image, q) for q in uncached}
    assert cached == uncached
    assert codec.encode_cache.misses == 5 and codec.encode_cache.hits == 3  # {0}, {1,2}, {35,36}, {37}, {99,100}


def test_fast_decoder_is_a_system_option_with_the_reference_outcomes(images: torch.Tensor) -> None:
    """``decoder="fast"`` reaches the links and, around the code's threshold, decodes as Sionna does."""
    results = {}
    for decoder in ("sionna", "fast"):
        s = _system(images, layer_symbols=[600], decoder=decoder)
        tx = s.prepare(images, [4.0, 6.0, 12.0])
        rows = []
        for snr in (4.0, 6.0, 12.0):
            (out,) = s.receive(tx, build_channel("awgn", seed=3), snr, resolution=1)
            rows.append((out.outage.tolist(), psnr(images, out.images).tolist()))
        assert all(link.decoder == decoder for link in s._links.values())
        results[decoder] = rows
    outages = [sum(o) for o, _ in results["sionna"]]
    assert outages[0] == len(images) and outages[-1] == 0  # the sweep crosses the cliff
    assert results["fast"] == results["sionna"]
    with pytest.raises(ValueError, match="decoder"):
        _system(images, decoder="turbo")
    with pytest.raises(ValueError, match="fast decoder"):  # at construction, not at the first link
        _system(images, decoder="fast", cn_update="boxplus")


def test_scenario_sscc_decoder_reaches_the_system() -> None:
    from semcom.scenarios import cache as run_cache
    from semcom.scenarios import load_scenario

    doc = load_scenario("quickstart").model_dump(mode="json")
    for system in doc["systems"]:
        if system["type"] == "sscc":
            system["decoder"] = "fast"
    sc = type(load_scenario("quickstart")).model_validate(doc)
    state = run_cache.RunCache().state(make_plan(sc, quick=True))
    sscc = [s for s in state.systems.values() if getattr(s, "kind", "") == "sscc"]
    assert sscc and all(s.decoder == "fast" for s in sscc)
