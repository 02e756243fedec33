"""Rate matching in worker processes: the serial payloads, each image in one process, nothing left running."""

from __future__ import annotations

import json
import multiprocessing

import pytest
import torch

from semcom.errors import SemcomError
from semcom.sscc.codecs import build_codec
from semcom.sscc.rate_pool import RateMatchingPool
from semcom.sscc.source import source_code_image


def _images(n: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0, 1, 16)
    base = torch.stack([ramp[None, :].expand(16, 16), ramp[:, None].expand(16, 16), 0.5 * (ramp[None] + ramp[:, None])])
    return (base[None] * torch.rand(n, 3, 1, 1, generator=g) + 0.2 * torch.rand(n, 3, 16, 16, generator=g)).clamp(0, 1)


@pytest.mark.parametrize("layering", ["refinement", "simulcast"])
def test_the_pool_gives_the_serial_payloads(layering: str) -> None:
    images = _images()
    codec = build_codec("jpeg")
    start = images.mean(0)
    # per-image budgets, some too small for anything (an outage that ends the refinement)
    budgets = [[400 + 40 * i, 300 if i % 3 else 8, None if i == 5 else 600] for i in range(len(images))]
    serial = [source_code_image(codec, img, b, layering, start) for img, b in zip(images, budgets, strict=True)]
    with RateMatchingPool(2) as pool:
        pooled = pool.code(codec, images, budgets, layering, start)  # type: ignore[arg-type]
        owners = [pool.worker_of(img) for img in images]
        assert owners == [pool.worker_of(img.clone()) for img in images]  # by content, not by position
        assert set(owners) == {0, 1}  # both processes got work
        again = pool.code(codec, images.flip(0), budgets[::-1], layering, start)  # type: ignore[arg-type]
    assert pooled == serial and again == serial[::-1]
    assert any(p is None for row in serial for p in row) and any(p is not None for row in serial for p in row)
    assert codec.encode_cache is None  # this process's codec was not changed by shipping it


def test_a_run_with_codec_workers_writes_the_serial_table(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from semcom.scenarios import run_scenario

    serial = run_scenario("quickstart", tmp_path / "serial", quick=True)
    pooled = run_scenario("quickstart", tmp_path / "pooled", quick=True, codec_workers=2)
    assert json.dumps(serial.rows, default=str) == json.dumps(pooled.rows, default=str)
    assert pooled.metadata["codec_workers"] == 2 and "codec_workers" not in serial.metadata
    assert not multiprocessing.active_children()  # the run's processes ended with it


def test_codec_workers_are_not_combined_with_point_workers() -> None:
    from semcom.scenarios import run_scenario

    with pytest.raises(SemcomError, match="codec-workers"):
        run_scenario("quickstart", quick=True, codec_workers=2, workers=2)
    with pytest.raises(SemcomError, match="codec-workers"):
        run_scenario("quickstart", quick=True, codec_workers=2, backend="ray")
    with pytest.raises(ValueError, match="at least 2"):
        RateMatchingPool(1)
