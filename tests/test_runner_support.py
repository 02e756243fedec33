"""A small, real TransmissionSystem for the runner's tests: linear analog JSCC (no training).

Layer l sends the projections of the image (minus the dataset mean) onto 2 k_l fixed orthonormal
directions, packed into k_l complex symbols with unit average power per image and layer. Decoder r
equalises (perfect CSI) and maps layers 1..r back with the transposed projection, so the PSNR rises
with SNR and with the number of layers. The per-image power scale travels beside the symbols (genie
side information: fine for testing the runner, not a model of a real link). A fixed random linear
head gives class scores. With ``outage_below_db``, an image whose received SNR (nominal plus
10 log10 |h|^2, averaged over the image) is below that threshold is an outage and shows the mean
image, like an SSCC receiver's cliff.

Scenarios use it as ``type: plugin, factory: "test_runner_support:build_linear_system"``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import torch

from semcom.channels import Channel
from semcom.scenarios.factory import SystemContext
from semcom.systems import LayerOutput, TransmissionSystem


class LinearJscc:
    """Linear analog multi-layer JSCC (see the module docstring)."""

    def __init__(self, name: str, mean_image: torch.Tensor, num_classes: int, layer_symbols: Sequence[int],
                 kind: str = "jscc", seed: int = 0, outage_below_db: float | None = None) -> None:
        self.name = name
        self.kind = kind
        self._symbols = tuple(int(k) for k in layer_symbols)
        self.mean = mean_image.float()
        n = self.mean.numel()
        gen = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(n, 2 * sum(self._symbols), generator=gen))
        self.basis = q  # [n, 2K], orthonormal columns
        self.head = torch.randn(2 * sum(self._symbols), num_classes, generator=gen)
        self.outage_below_db = outage_below_db
        self.checksums = {"linear-basis": hashlib.sha256(q.numpy().tobytes()).hexdigest()}

    @property
    def num_layers(self) -> int:
        return len(self._symbols)

    @property
    def layer_symbols(self) -> Sequence[int]:
        return self._symbols

    def _cols(self, r: int) -> int:
        return 2 * sum(self._symbols[:r])

    def prepare(self, images: torch.Tensor, user_snrs_db: Sequence[float]) -> dict[str, Any]:
        z = (images - self.mean).flatten(1) @ self.basis  # [B, 2K]
        parts, scales, start = [], [], 0
        for k in self._symbols:
            c = torch.complex(z[:, start:start + 2 * k:2], z[:, start + 1:start + 2 * k:2])
            scale = (c.abs().square().mean(dim=1, keepdim=True)).sqrt().clamp_min(1e-6)
            parts.append(c / scale)
            scales.append(scale.expand(-1, k))
            start += 2 * k
        return {"x": torch.cat(parts, dim=1), "scale": torch.cat(scales, dim=1)}

    def receive(self, tx: dict[str, Any], channel: Channel, snr_db: float,
                resolution: int) -> list[LayerOutput]:
        out = channel(tx["x"], snr_db, layer_sizes=self._symbols)
        x_hat, _ = out.receiver_view()
        z_c = x_hat * tx["scale"]
        z = torch.stack([z_c.real, z_c.imag], dim=2).flatten(1)  # back to [B, 2K] reals
        rx_snr = snr_db + 10 * torch.log10(out.h.abs().square().mean(dim=1).clamp_min(1e-12))
        outage = (rx_snr < self.outage_below_db) if self.outage_below_db is not None else None
        results = []
        for r in range(1, resolution + 1):
            cols = self._cols(r)
            rec = (z[:, :cols] @ self.basis[:, :cols].T).reshape(-1, *self.mean.shape) + self.mean
            rec = rec.clamp(0, 1)
            if outage is not None:
                rec = torch.where(outage[:, None, None, None], self.mean.expand_as(rec), rec)
            logits = z[:, :cols] @ self.head[:cols]
            results.append(LayerOutput(layer=r, images=rec, logits=logits, outage=outage,
                                       info={"symbols": sum(self._symbols[:r]), "decoder": f"D{r}"}))
        return results


def build_linear_system(context: SystemContext, layer_symbols: Sequence[int] = (8, 8, 8), kind: str = "jscc",
                        seed: int = 0, outage_below_db: float | None = None,
                        name: str = "linear") -> LinearJscc:
    """Plug-in factory (``type: plugin``) for :class:`LinearJscc`."""
    return LinearJscc(name, context.mean_image, context.num_classes, layer_symbols, kind, seed,
                      outage_below_db)


def test_linear_system_is_a_transmission_system() -> None:
    ctx = SystemContext("mnist-sample", (1, 28, 28), 10, torch.full((1, 28, 28), 0.2))
    system = build_linear_system(ctx, layer_symbols=(4, 6))
    assert isinstance(system, TransmissionSystem)
    images = torch.rand(3, 1, 28, 28)
    tx = system.prepare(images, [10.0])
    power = tx["x"].abs().square()
    assert torch.allclose(power[:, :4].mean(dim=1), torch.ones(3), atol=1e-5)  # unit power per layer
    assert torch.allclose(power[:, 4:].mean(dim=1), torch.ones(3), atol=1e-5)
