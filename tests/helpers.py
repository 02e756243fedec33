"""Helpers shared by several test files: a toy JSCC encoder, synthetic digits, a tiny MNIST folder
and the pieces of the tiny plug-in scenarios (imported as ``helpers``: pytest puts ``tests/`` on the path)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from semcom.data import ImageDataset, load_dataset
from semcom.data.formats import write_idx

TOY_SIZES = (12, 10, 10)
"""Complex symbols per layer of :class:`ToyEncoder`."""


class ToyEncoder(nn.Module):
    """A fixed random linear JSCC stand-in: 3 layers of complex symbols (:data:`TOY_SIZES`) from
    28x28 images, unit power per layer. Its weights come from the global torch generator."""

    def __init__(self) -> None:
        super().__init__()
        self.layer_symbols = TOY_SIZES
        self.proj = nn.Linear(784, 2 * sum(TOY_SIZES))
        self.requires_grad_(False)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        z = torch.view_as_complex(self.proj(images.flatten(1) - 0.13).reshape(len(images), -1, 2).contiguous())
        parts = torch.split(z, list(TOY_SIZES), dim=1)
        return torch.cat([p / p.abs().square().mean(1, keepdim=True).sqrt() for p in parts], dim=1)


def synthetic_digits(n: int, labels: torch.Tensor | None = None) -> ImageDataset:
    """``n`` synthetic 'MNIST' images whose class (``i % 10``) decides which 7x7 block is bright
    (learnable from few images); ``labels`` replaces the labels the dataset reports, not the images."""
    gen = torch.Generator().manual_seed(0)
    classes = torch.arange(n) % 10
    px = (torch.rand(n, 1, 28, 28, generator=gen) * 60).to(torch.uint8)
    for i, c in enumerate(classes.tolist()):
        r, q = divmod(c, 4)
        px[i, 0, 7 * r:7 * r + 7, 7 * q:7 * q + 7] = 230
    return ImageDataset("mnist", "train", px, classes if labels is None else labels, tuple("0123456789"),
                        torch.arange(n))


def write_tiny_mnist(root: Path) -> Path:
    """An MNIST folder at ``root`` (created) from the offline sample: 64 train and 32 test images."""
    data = load_dataset("mnist-sample", subset=96)
    pixels = (data.images() * 255).round().to(torch.uint8)[:, 0].numpy()
    labels = data.labels.to(torch.uint8).numpy()
    root.mkdir(parents=True)
    for prefix, sl in (("train", slice(0, 64)), ("t10k", slice(64, 96))):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", pixels[sl])
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels[sl])
    return root


LINEAR_FACTORY = "test_runner_support:build_linear_system"
"""The linear JSCC plug-in of ``test_runner_support`` (scenarios naming it need ``allow_code``)."""

TINY_SETUP = f"""\
seed: 7
draws: 2
batch_size: 3
dataset:
  name: mnist-sample
  images: 5
systems:
  - name: lin
    type: plugin
    factory: "{LINEAR_FACTORY}"
    options: {{layer_symbols: [6, 6, 6]}}
  - name: cliff
    type: plugin
    factory: "{LINEAR_FACTORY}"
    options: {{layer_symbols: [6, 6], kind: sscc, outage_below_db: 5}}
"""
"""Scenario lines of the tiny plug-in scenarios: seed, draws, 5 images of the MNIST sample and two
linear systems (``lin`` with 3 layers, ``cliff``: 2 layers with an outage below 5 dB)."""

TINY_USERS = """\
users:
  - name: near
    snr_db: {start: 0, stop: 20, step: 10}
    resolution: 2
    tasks: [reconstruction, classification]
  - name: far
    snr_db: 3
    resolution: 1
"""
"""Two users of the tiny scenarios: ``near`` (0, 10, 20 dB, 2 layers, both tasks) and ``far`` (3 dB, 1 layer)."""
