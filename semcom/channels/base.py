"""The channel interface shared by the analog (JSCC) and the digital (QAM) links.

Convention (docs/conventions.md): symbols have unit average power per complex symbol and

    y = h x + n,    n ~ CN(0, N0),  N0/2 per real part,   SNR = Es/N0,  SNR_dB = -10 log10(N0).

Every channel is a ``torch.nn.Module`` that takes complex symbols ``x`` of shape ``[B, n]`` and an SNR
(scalar or one per row, in dB) and returns a :class:`ChannelOutput`. It is differentiable in ``x``,
batched, and seedable: each channel owns a ``torch.Generator`` that it hands to the Sionna blocks
it is built on, so two channels with the same seed draw the same noise and gains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

__all__ = [
    "BlockLength",
    "Channel",
    "ChannelOutput",
    "Csi",
    "noise_variance",
    "seeded_block",
]

BlockLength = Literal["image", "layer", "symbol"]
Csi = Literal["perfect", "none"]


def noise_variance(snr_db: float | torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """N0 per complex symbol for unit-power symbols: ``N0 = 10^(-SNR_dB / 10)``."""
    snr = torch.as_tensor(snr_db, dtype=torch.float32, device=device)
    return torch.pow(10.0, -snr / 10.0)


@dataclass
class ChannelOutput:
    """What the receiver side of a channel sees.

    Attributes:
        y: received symbols, ``[B, n]`` complex.
        h: channel gains broadcastable to ``y`` (``[B, 1]`` per image, ``[B, n]`` otherwise); ones
            for AWGN. Present whatever the CSI; a receiver without CSI must not read it
            (``csi == "none"``): use :meth:`receiver_view`.
        no: noise variance N0 per complex symbol, ``[B, 1]``.
        csi: ``"perfect"`` or ``"none"``.
    """

    y: torch.Tensor
    h: torch.Tensor
    no: torch.Tensor
    csi: Csi = "perfect"

    def equalized(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero-forcing with perfect CSI: ``x_hat = y / h`` and its noise ``N0 / |h|^2`` per symbol.

        Raises ``RuntimeError`` without CSI (the receiver cannot know ``h``).
        """
        if self.csi != "perfect":
            raise RuntimeError("equalisation needs perfect CSI at the receiver (csi='perfect')")
        gain = self.h.abs().square().clamp_min(1e-12)
        x_hat = self.y * self.h.conj() / gain
        return x_hat, (self.no / gain).expand_as(self.y.real)

    def receiver_view(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Symbols a receiver may use and their per-symbol noise variance, as the CSI allows.

        Perfect CSI: the equalised symbols. No CSI: the raw ``y`` and ``N0`` (the fading unknown).
        """
        if self.csi == "perfect":
            return self.equalized()
        return self.y, self.no.expand_as(self.y.real)


def seeded_block(block_cls: type, generator: torch.Generator, **kwargs: object) -> torch.nn.Module:
    """Build a Sionna block whose random draws come from ``generator`` instead of the global one.

    Sionna blocks read their generator from the ``torch_rng`` property; overriding it per instance
    gives each semcom channel its own reproducible stream.
    """
    seeded = type(f"Seeded{block_cls.__name__}", (block_cls,), {"torch_rng": property(lambda self: generator)})
    return seeded(**kwargs)


class Channel(torch.nn.Module):
    """Base class: ``y = h x + n`` with ``h`` drawn by :meth:`gains` and Sionna's AWGN.

    Args:
        block: how long one fading gain lasts: ``"image"`` (one per row), ``"layer"`` (one per
            layer segment, given by ``layer_sizes`` at call time) or ``"symbol"``.
        csi: receiver CSI, ``"perfect"`` or ``"none"``.
        seed: seed of the channel's own generator (``None``: a random seed).
        device: where the noise and gains are drawn; fixed at construction.

    Input:
        x: ``[B, n]`` complex (unit average power per symbol).
        snr_db: float or ``[B]`` tensor, Es/N0 in dB.
        layer_sizes: symbol count of each layer (sums to ``n``); needed for ``block="layer"``.

    Output:
        :class:`ChannelOutput`.
    """

    name = "channel"

    def __init__(
        self,
        block: BlockLength = "image",
        csi: Csi = "perfect",
        seed: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        if block not in ("image", "layer", "symbol"):
            raise ValueError(f"block must be 'image', 'layer' or 'symbol', not {block!r}")
        if csi not in ("perfect", "none"):
            raise ValueError(f"csi must be 'perfect' or 'none', not {csi!r}")
        from sionna.phy.channel import AWGN  # lazy: importing Sionna takes seconds

        self.block = block
        self.csi = csi
        self.device = str(device)
        self.generator = torch.Generator(device=self.device)
        self.seed(seed)
        self._awgn = seeded_block(AWGN, self.generator, device=self.device)

    def seed(self, seed: int | None) -> None:
        """Restart the channel's random stream (``None``: a fresh random seed)."""
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))

    def gains(self, batch: int, n: int, layer_sizes: Sequence[int] | None) -> torch.Tensor | None:
        """Channel gains, ``[B, 1]`` or ``[B, n]`` complex; ``None`` means ``h = 1`` (no fading)."""
        return None

    def _gain_count(self, n: int, layer_sizes: Sequence[int] | None) -> int:
        if self.block == "image":
            return 1
        if self.block == "symbol":
            return n
        if not layer_sizes or sum(layer_sizes) != n:
            raise ValueError(f"block='layer' needs layer_sizes summing to {n}, got {layer_sizes}")
        return len(layer_sizes)

    @staticmethod
    def _expand_layers(g: torch.Tensor, layer_sizes: Sequence[int]) -> torch.Tensor:
        sizes = torch.as_tensor(list(layer_sizes), device=g.device)
        return torch.repeat_interleave(g, sizes, dim=1)

    def forward(
        self,
        x: torch.Tensor,
        snr_db: float | torch.Tensor,
        layer_sizes: Sequence[int] | None = None,
    ) -> ChannelOutput:
        if not torch.is_complex(x) or x.dim() != 2:
            raise ValueError(f"channel input must be complex [B, n], got {x.dtype} {tuple(x.shape)}")
        batch, n = x.shape
        no = noise_variance(snr_db, self.device).reshape(-1, 1)
        if no.shape[0] not in (1, batch):
            raise ValueError(f"snr_db must be a scalar or have one value per row ({batch}), got {no.shape[0]}")
        no = no.expand(batch, 1)
        h = self.gains(batch, n, layer_sizes)
        if h is None:  # skip a full-size multiply by one
            y = self._awgn(x, no)
            h = torch.ones(batch, 1, dtype=y.dtype, device=y.device)
        else:
            y = self._awgn(h * x, no)
        return ChannelOutput(y=y, h=h, no=no, csi=self.csi)

    def extra_repr(self) -> str:
        return f"block={self.block}, csi={self.csi}"
