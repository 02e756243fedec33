"""``semcom train`` under ``torchrun``: two CPU processes (gloo) against one process, and against each other.

Each process draws the whole batch (order, flips, SNRs, channel noise) and trains on its half; the
averaged gradient is the one-process gradient up to the order of floating-point sums, so after a few
steps the weights agree with a one-process run to a small tolerance, and two 2-process runs (one of
them cut after an epoch and resumed) agree bit for bit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from semcom.distributed import SINGLE, ProcessGroup, launched
from semcom.jscc.checkpoint import load_checkpoint
from semcom.jscc.config import TrainConfig
from semcom.jscc.train import train

# a tiny run: 80 synthetic images (64 train, 16 held out), 4 steps of 16 per epoch, 2 epochs
_OPTIONS = {
    "dataset": "synthetic", "layer_symbols": [8, 8], "enc_width": 8, "dec_width": 8, "epochs": 2,
    "batch_size": 16, "eval_count": 16, "eval_snrs": [10.0], "final_eval_count": 16, "warmup_steps": 2,
    "augment_flip": True, "channel": "rayleigh", "loss": "psnr", "threads": 1, "progress": False,
}
_ARGS = ["--dataset", "synthetic", "--layer-symbols", "8,8", "--enc-width", "8", "--dec-width", "8", "--epochs",
         "2", "--batch-size", "16", "--eval-count", "16", "--eval-snrs", "10", "--final-eval-count", "16",
         "--warmup-steps", "2", "--augment-flip", "--channel", "rayleigh", "--loss", "psnr", "--threads", "1",
         "--no-progress"]

_SYNTHETIC = """
import torch
from semcom.data import ImageDataset

def synthetic():
    g = torch.Generator().manual_seed(0)
    pixels = (torch.rand(80, 1, 8, 8, generator=g) * 255).to(torch.uint8)
    return ImageDataset("synthetic", "train", pixels, torch.arange(80) % 3, ("a", "b", "c"), torch.arange(80))
"""

# `semcom train` on the synthetic images; CUT=1 stops it at the start of its second epoch, as a killed
# job would (rank 0 has written epoch 1)
_LAUNCHER = _SYNTHETIC + """
import os
from semcom.jscc import train as train_mod
from semcom.jscc.epoch import EpochTrainer

ds = synthetic()
train_mod._load_data = lambda cfg: (ds, ds, {"name": "synthetic"})
real = EpochTrainer.run_epoch

def cut(self, dataset, state, budget):
    if state.epoch == 1:
        raise SystemExit(3)
    return real(self, dataset, state, budget)

if os.environ.get("CUT") == "1":
    EpochTrainer.run_epoch = cut
from semcom.cli.app import main
main()
"""


def _torchrun(out: Path, cut: bool = False) -> subprocess.CompletedProcess[str]:
    """``torchrun --standalone --nproc_per_node 2 launcher.py train ... --out OUT`` (gloo on CPU)."""
    launcher = out.parent / "launcher.py"
    launcher.write_text(_LAUNCHER)
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", CUT="1" if cut else "0")
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(launcher), "train", *_ARGS, "--out", str(out)], cwd=out.parent, env=env,
                          capture_output=True, text=True, timeout=300)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).state_dict()


def test_shards_split_a_batch_evenly() -> None:
    assert [ProcessGroup(r, 4, r, "gloo").shard(16) for r in range(4)] == [(0, 4), (4, 8), (8, 12), (12, 16)]
    assert SINGLE.shard(10) == (0, 10) and not SINGLE.joined and SINGLE.main
    with pytest.raises(ValueError, match="does not split evenly"):
        ProcessGroup(1, 3, 1, "gloo").shard(16)
    assert SINGLE.mean(torch.tensor(2.0)) == 2.0 and SINGLE.from_main([1.0]) == [1.0]


@pytest.mark.slow
def test_two_processes_train_as_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from semcom.jscc import train as train_mod

    assert not launched()  # the suite itself runs as one process
    scope: dict[str, Any] = {}
    exec(_SYNTHETIC, scope)
    ds = scope["synthetic"]()
    monkeypatch.setattr(train_mod, "_load_data", lambda cfg: (ds, ds, {"name": "synthetic"}))
    one = tmp_path / "one"
    train(TrainConfig(**_OPTIONS, out=str(one)), command="t")

    whole = _torchrun(tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert whole.stderr.count("] training ") == 1  # rank 0 alone logs

    # the same run cut after its first epoch, then resumed: every rank reloads what rank 0 wrote
    cut = _torchrun(tmp_path / "cut", cut=True)
    assert cut.returncode != 0 and not (tmp_path / "cut" / "FINISHED").exists()
    assert json.loads((tmp_path / "cut" / "latest.json").read_text())["epochs"] == 1
    resumed = _torchrun(tmp_path / "cut")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    card = json.loads((tmp_path / "whole" / "best.json").read_text())
    assert card["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert card["epochs"] == 2 and card["steps"] == 8 and len(card["test"]["psnr_db"]) == 2
    assert "distributed" not in json.loads((one / "best.json").read_text())
    assert (tmp_path / "cut" / "FINISHED").is_file()

    reference = _weights(one / "latest.safetensors")
    two = _weights(tmp_path / "whole" / "latest.safetensors")
    again = _weights(tmp_path / "cut" / "latest.safetensors")
    for name, value in reference.items():
        assert torch.equal(two[name], again[name]), name  # two 2-process runs: bit for bit
        # one process vs two: the same steps, up to summation order (8 Adam steps of lr 1e-3 at most)
        torch.testing.assert_close(two[name], value, rtol=1e-3, atol=1e-4, msg=name)


# `train_receiver` on the synthetic images and the encoder ENCODER; each rank saves what it returns.
# proxy-softmax: several tasks and hard-negative pairs, and no noise of its own (proxy-uncertainty
# samples its attention from torch's global generator, per process)
_RECEIVER_LAUNCHER = _SYNTHETIC + """
import os
from semcom.receivers import train_receiver

run = train_receiver("proxy-softmax", os.environ["ENCODER"], synthetic(), epochs=2, batch_size=16,
                     channel="rayleigh", weighting="uncertainty")
torch.save({"state": run.receiver.state_dict(), "config": run.config, "history": run.history},
           f"rx{os.environ['RANK']}.pt")
"""


@pytest.mark.slow
def test_two_processes_train_a_receiver_as_one(tmp_path: Path) -> None:
    from semcom.jscc.anchored import build_jscc
    from semcom.jscc.checkpoint import save_checkpoint
    from semcom.receivers import train_receiver

    scope: dict[str, Any] = {}
    exec(_SYNTHETIC, scope)
    ds = scope["synthetic"]()
    torch.manual_seed(0)
    encoder = build_jscc(TrainConfig(**_OPTIONS).architecture.config_for(ds.shape, ds.num_classes))
    path = save_checkpoint(encoder, tmp_path / "encoder.safetensors", {"name": "tiny"})
    one = train_receiver("proxy-softmax", str(path), ds, epochs=2, batch_size=16, channel="rayleigh",
                         weighting="uncertainty")

    (tmp_path / "launcher.py").write_text(_RECEIVER_LAUNCHER)
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", ENCODER=str(path))
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "launcher.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rx{r}.pt", weights_only=True) for r in (0, 1)]
    assert one.receiver.wants_pairs
    assert ranks[0]["config"]["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert ranks[0]["config"]["steps"] == one.config["steps"] == 10
    for name, value in one.receiver.state_dict().items():
        assert torch.equal(ranks[0]["state"][name], ranks[1]["state"][name]), name  # the ranks agree exactly
        torch.testing.assert_close(ranks[0]["state"][name], value, rtol=1e-3, atol=1e-4, msg=name)
    for mine, theirs in zip(one.history, ranks[0]["history"], strict=True):  # epoch means of the whole batches
        assert mine.keys() == theirs.keys()
        assert all(abs(mine[k] - theirs[k]) < 1e-4 for k in mine if k != "seconds")
