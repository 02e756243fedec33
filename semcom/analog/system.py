"""The linear analog code as a :class:`semcom.systems.TransmissionSystem` for the scenario runner.

With a fixed design SNR the broadcast is encoded once (:meth:`LinearAnalogSystem.prepare`) and every
user decodes its own reception; with the design at the receiver's SNR (``design_snr_db=None``) each
user gets an encoding made for its SNR (a unicast per user, the transmitter knowing each SNR).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from semcom.analog.code import LinearAnalogCode
from semcom.analog.store import load_linear_code
from semcom.channels.base import Channel
from semcom.systems import LayerOutput

__all__ = ["LinearAnalogSystem", "LinearTransmission"]


@dataclass
class LinearTransmission:
    """What :meth:`LinearAnalogSystem.prepare` hands to :meth:`LinearAnalogSystem.receive`.

    Attributes:
        images: ``[B, C, H, W]`` (kept to encode per user when the design SNR is the receiver's).
        symbols: ``[B, k]`` complex64 for a fixed design SNR, else None.
    """

    images: torch.Tensor
    symbols: torch.Tensor | None


class LinearAnalogSystem:
    """Linear analog code (SoftCast / KLT, LMMSE receiver) behind the transmission-system interface.

    Args:
        code: a :class:`~semcom.analog.code.LinearAnalogCode`, a zoo name (``"cifar10-klt"``) or a
            ``.safetensors`` file written by :func:`~semcom.analog.store.save_linear_code`.
        name: label in results.
        device: where it runs.
    """

    kind = "linear"

    def __init__(self, code: LinearAnalogCode | str | Path, name: str | None = None, device: str = "cpu") -> None:
        self.card: dict = {}
        if isinstance(code, LinearAnalogCode):
            label = name or "linear"
        else:
            code, self.card = load_linear_code(code)
            label = name or self.card.get("name", "linear")
        self.code = code.to(device).eval()
        self.device = device
        self.name = label

    @property
    def num_layers(self) -> int:
        return self.code.num_layers

    @property
    def layer_symbols(self) -> Sequence[int]:
        return self.code.layer_symbols

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.code.config.image_shape

    @torch.no_grad()
    def prepare(self, images: torch.Tensor, user_snrs_db: Sequence[float] = ()) -> LinearTransmission:
        images = images.to(self.device, torch.float32)
        fixed = self.code.config.design_snr_db is not None or self.code.config.allocation == "softcast"
        return LinearTransmission(images, self.code.encode(images) if fixed else None)

    @torch.no_grad()
    def receive(
        self, tx: LinearTransmission, channel: Channel, snr_db: float | torch.Tensor, resolution: int
    ) -> list[LayerOutput]:
        """Layers 1..``resolution`` through ``channel``; LMMSE images from each prefix 1..r."""
        if not 1 <= resolution <= self.num_layers:
            raise ValueError(f"resolution must be in 1..{self.num_layers}, got {resolution}")
        symbols = tx.symbols if tx.symbols is not None else self.code.encode(tx.images, snr_db)
        sizes = list(self.layer_symbols[:resolution])
        out = channel(symbols[:, : sum(sizes)], snr_db, layer_sizes=sizes)
        n = self.code.basis.shape[0]
        results = []
        for r, images in self.code.receive(out, snr_db=snr_db):
            used = sum(self.layer_symbols[:r])
            results.append(
                LayerOutput(
                    layer=r,
                    images=images.clamp(0.0, 1.0),
                    logits=None,
                    outage=torch.zeros(images.shape[0], dtype=torch.bool, device=images.device),
                    info={"symbols": used, "bandwidth_ratio": used / n},
                )
            )
        return results

    def describe(self) -> dict:
        cfg = self.code.config
        out: dict = {
            "transform": cfg.transform,
            "allocation": cfg.allocation,
            "design_snr_db": cfg.design_snr_db if cfg.allocation == "mmse" else None,
            "power_normalisation": cfg.power,
            "layer_symbols": list(cfg.layer_symbols),
            "receiver_knows": "transform, gains and SNR; the channel gains where the channel's csi is "
            "'perfect' (without CSI it takes h = 1)",
        }
        for key in ("name", "sha256"):
            if key in self.card:
                out[f"card_{key}" if key == "name" else key] = self.card[key]
        if "dataset" in self.card:
            out["fitted_on"] = self.card["dataset"]
        return out

    def __repr__(self) -> str:
        return f"LinearAnalogSystem(name={self.name!r}, layer_symbols={tuple(self.layer_symbols)})"
