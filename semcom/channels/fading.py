"""Flat fading channels: Rayleigh and Rician, with explicit block length."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from semcom.channels.base import BlockLength, Channel, Csi, seeded_block

__all__ = ["RayleighChannel", "RicianChannel"]


class RayleighChannel(Channel):
    """Rayleigh flat fading: ``y = h x + n``, ``h ~ CN(0, 1)`` (so ``E|h|^2 = 1``), ``n ~ CN(0, N0)``.

    Gains come from Sionna's ``GenerateFlatFadingChannel(1, 1)``; one gain per image, per layer or
    per symbol (``block``). Input ``x``: ``[B, n]`` complex. Output: :class:`ChannelOutput` with
    ``h`` of shape ``[B, 1]`` (``block="image"``) or ``[B, n]``.
    """

    name = "rayleigh"

    def __init__(
        self,
        block: BlockLength = "image",
        csi: Csi = "perfect",
        seed: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(block=block, csi=csi, seed=seed, device=device)
        from sionna.phy.channel import GenerateFlatFadingChannel

        self._fading = seeded_block(GenerateFlatFadingChannel, self.generator, num_tx_ant=1, num_rx_ant=1,
                                    device=self.device)

    def scattered(self, count: int) -> torch.Tensor:
        """``count`` independent CN(0, 1) gains."""
        return self._fading(count).reshape(count)

    def gains(self, batch: int, n: int, layer_sizes: Sequence[int] | None) -> torch.Tensor:
        m = self._gain_count(n, layer_sizes)
        g = self.scattered(batch * m).reshape(batch, m)
        g = self.shape_gains(g)
        if self.block == "layer":
            g = self._expand_layers(g, layer_sizes)  # type: ignore[arg-type]
        return g

    def shape_gains(self, g: torch.Tensor) -> torch.Tensor:
        return g


class RicianChannel(RayleighChannel):
    """Rician flat fading with K factor: ``h = sqrt(K/(K+1)) + sqrt(1/(K+1)) g``, ``g ~ CN(0, 1)``.

    ``E|h|^2 = 1``; K is the ratio of the line-of-sight power to the scattered power (linear, not
    dB); the line-of-sight phase is 0. K = 0 is Rayleigh; K -> inf tends to AWGN.
    """

    name = "rician"

    def __init__(
        self,
        k_factor: float = 1.0,
        block: BlockLength = "image",
        csi: Csi = "perfect",
        seed: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if not k_factor >= 0 or math.isinf(k_factor):
            raise ValueError(f"Rician K factor must be a finite number >= 0, got {k_factor}")
        super().__init__(block=block, csi=csi, seed=seed, device=device)
        self.k_factor = float(k_factor)

    def shape_gains(self, g: torch.Tensor) -> torch.Tensor:
        k = self.k_factor
        return math.sqrt(k / (k + 1.0)) + math.sqrt(1.0 / (k + 1.0)) * g

    def extra_repr(self) -> str:
        return f"k_factor={self.k_factor}, " + super().extra_repr()
