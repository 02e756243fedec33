"""The shared evaluation: collectors against hand-computed values, seed schedules, and the loop giving
the scenario runner's numbers."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from semcom.channels import build_channel
from semcom.data import ImageDataset
from semcom.errors import SemcomError
from semcom.evaluation import (
    LayerCollector,
    Link,
    StreamPerSnr,
    evaluate_links,
    evaluate_system,
    merge_info,
)
from semcom.metrics import t_interval95
from semcom.scenarios import parse_scenario, run_scenario
from semcom.scenarios.cache import RunCache
from semcom.scenarios.results import COLUMNS
from semcom.scenarios.runner import ScenarioSeeds, make_plan
from semcom.systems import LayerOutput

# Their scenario files name a test factory by module path, which needs the user's opt-in.
pytestmark = pytest.mark.usefixtures("allow_code")

ZERO = torch.zeros(2, 1, 12, 12)


def _received(offsets: Sequence[float], logits: torch.Tensor | None = None,
              outage: torch.Tensor | None = None, **info: object) -> LayerOutput:
    """Layer 1 of two all-zero images received with a constant error per image (MSE = offset^2)."""
    images = torch.stack([torch.full((1, 12, 12), float(o)) for o in offsets])
    return LayerOutput(1, images, logits, outage, dict(info))


def test_pooled_psnr_is_below_the_mean_of_per_image_psnrs() -> None:
    c = LayerCollector(similarity=False)
    c.add(ZERO, torch.zeros(2, dtype=torch.long), _received([0.1, 0.01]))  # MSE 1e-2 and 1e-4: 20 and 40 dB
    s = c.summary()
    assert s.psnr.mean == pytest.approx(30.0, abs=1e-4)
    assert s.psnr_pooled == pytest.approx(10 * math.log10(1 / ((1e-2 + 1e-4) / 2)), abs=1e-4)  # 22.97 dB
    assert s.psnr.std == pytest.approx(math.sqrt(200), abs=1e-3) and s.psnr.count == 2
    assert s.psnr.ci95 == pytest.approx(1.96 * math.sqrt(200) / math.sqrt(2), abs=1e-3)
    assert math.isnan(s.accuracy.mean)  # no class scores
    assert math.isnan(s.psnr_draw_ci95) and s.draws == 1
    assert torch.equal(c.psnr_values(), c.psnr_values(draw=0))


def test_accuracy_outage_and_intervals_over_draws() -> None:
    labels = torch.tensor([0, 1])
    right, wrong = torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([[0.0, 1.0], [0.0, 3.0]])
    c = LayerCollector(keep_logits=True)
    c.add(ZERO, labels, _received([0.1, 0.1], right, torch.tensor([False, True])), draw=0)  # 20 dB, 2 hits
    c.add(ZERO, labels, _received([0.01, 0.01], wrong), draw=1)                            # 40 dB, 1 hit
    s = c.summary()
    assert s.accuracy.mean == pytest.approx(0.75) and s.accuracy.count == 4
    assert s.outage.mean == pytest.approx(0.25)
    assert s.draws == 2 and c.draws() == [0, 1]
    # Student t over the two draws' means (20 and 40 dB): t(1) = 12.706
    assert s.psnr_draw_ci95 == pytest.approx(12.706 * math.sqrt(200) / math.sqrt(2), rel=1e-5)
    assert s.psnr_draw_ci95 == pytest.approx(t_interval95([20.0, 40.0]), rel=1e-5)
    assert s.accuracy_draw_ci95 == pytest.approx(t_interval95([1.0, 0.5]))
    assert c.logits().shape == (4, 2) and c.hits(draw=1).tolist() == [0.0, 1.0]
    assert s.ssim.count == 4 and math.isnan(s.ms_ssim.mean)  # 12x12 images: too small for five scales
    row = c.row()
    assert set(row) <= set(COLUMNS) and row["accuracy"] == s.accuracy.mean


def test_what_is_measured_follows_the_tasks() -> None:
    c = LayerCollector(reconstruction=False, similarity=False)
    c.add(ZERO, torch.tensor([0, 1]), _received([0.1, 0.1], torch.eye(2)))
    assert c.psnr_values().numel() == 0 and math.isnan(c.summary().psnr_pooled)
    assert c.summary().accuracy.mean == 1.0
    c = LayerCollector(classification=False, similarity=False)
    c.add(ZERO, torch.tensor([0, 1]), _received([0.1, 0.1], torch.eye(2)))
    assert c.hits().numel() == 0 and c.psnr_values().numel() == 2


def test_info_is_merged_by_batch_size_and_kept_per_image() -> None:
    assert merge_info([(1, {"bits": 10, "mcs": "a"}), (3, {"bits": 20, "mcs": "b"}), (2, {"mcs": "a"})]) == {
        "bits": 17.5, "mcs": "a,b"}
    c = LayerCollector(similarity=False)
    c.add(ZERO, torch.tensor([0, 1]), _received([0.1, 0.1], error=torch.tensor([1.0, 2.0])))
    c.add(ZERO, torch.tensor([0, 1]), _received([0.1, 0.1], error=torch.tensor([3.0, 4.0])))
    assert c.info_values("error").tolist() == [1.0, 2.0, 3.0, 4.0]
    assert c.info_values("absent").numel() == 0
    assert c.row()["info"] == {"error": 2.5}


def test_stream_per_snr_restarts_once_per_snr() -> None:
    s = StreamPerSnr(100, step=2)
    assert [s.channel(p, "u", 0, 0) for p in range(3)] == [100, 102, 104]
    assert s.channel(1, "u", 0, 1) is None and s.channel(1, "u", 1, 0) is None
    assert s.prepare(0, None, 0) is None and s.receive(0, "u", 0, 0) is None


class _Echo:
    """A system that receives its images back (plus the channel's noise on one symbol per image)."""

    name, kind = "echo", "jscc"
    num_layers, layer_symbols = 2, (1, 1)

    def __init__(self, layers: list[int] | None = None) -> None:
        self.layers = layers

    def prepare(self, images: torch.Tensor, user_snrs_db: Sequence[float]) -> torch.Tensor:
        return images

    def receive(self, tx: torch.Tensor, channel, snr_db: float, resolution: int) -> list[LayerOutput]:
        noise = channel(torch.ones(tx.shape[0], 1, dtype=torch.complex64), snr_db).y.real - 1
        layers = self.layers or list(range(1, resolution + 1))
        return [LayerOutput(r, (tx + 0.01 * noise[:, :, None, None]).clamp(0, 1)) for r in layers]


def _pixels(n: int = 6) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    px = (torch.rand(n, 1, 4, 4, generator=g) * 255).to(torch.uint8)
    return ImageDataset("synthetic", "test", px, torch.arange(n) % 2, ("a", "b"), torch.arange(n))


def test_the_loop_checks_the_layers_and_follows_the_schedule() -> None:
    ch = build_channel("awgn")
    with pytest.raises(SemcomError, match=r"system 'echo' returned layers \[2\] for resolution 1"):
        evaluate_links(_Echo([2]), _pixels(), ch, [Link("u", 10.0, 1)])
    a = evaluate_system(_Echo(), _pixels(), ch, [0.0, 0.0], batch_size=4, seed=5)
    b = evaluate_system(_Echo(), _pixels(), ch, [0.0], batch_size=4, seed=6)
    # the second SNR's stream starts at seed + 1: the same noise as the first SNR of seed 6
    assert torch.equal(a.layers[1][0].psnr_values(), b.layers[0][0].psnr_values())
    assert not torch.equal(a.layers[0][0].psnr_values(), a.layers[1][0].psnr_values())
    rows = evaluate_system(_Echo(), _pixels(), ch, [0.0, 20.0], draws=3, batch_size=4).rows()
    assert [(r["snr_db"], r["layer"]) for r in rows] == [(0.0, 1), (0.0, 2), (20.0, 1), (20.0, 2)]
    assert all(r["images"] == 6 and r["draws"] == 3 and r["psnr_draw_ci95"] > 0 for r in rows)


TINY = """\
name: tiny
seed: 7
draws: 2
batch_size: 3
dataset: {name: mnist-sample, images: 5}
systems:
  - name: lin
    type: plugin
    factory: "test_runner_support:build_linear_system"
    options: {layer_symbols: [6, 6, 6]}
channel: {type: rayleigh, block: layer}
users:
  - name: receiver
    snr_db: [0, 10]
    resolution: 2
    tasks: [reconstruction, classification]
"""


def test_evaluate_system_gives_the_runners_numbers(tmp_path: Path) -> None:
    scenario = parse_scenario(TINY, tmp_path / "tiny.yaml")
    rows = run_scenario(scenario).rows
    state = RunCache().state(make_plan(scenario))
    result = evaluate_system(state.systems["lin"], state.images, state.channel, [0.0, 10.0], resolution=2,
                             draws=2, batch_size=3, seeds=ScenarioSeeds(7, "lin"), similarity=True)
    for row in rows:
        ours = result.layers[row["point"]][row["layer"] - 1].row()
        assert json.dumps(ours, default=str) == json.dumps({k: row[k] for k in ours}, default=str)
