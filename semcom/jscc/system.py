"""The multi-resolution JSCC as a :class:`semcom.systems.TransmissionSystem` for the scenario runner.

A broadcast encodes each batch once (:meth:`JsccSystem.prepare`); every user then receives the
first r layers through its own channel (:meth:`JsccSystem.receive`) and decodes them with
D_1..D_r. The encoder does not adapt to the users' SNRs (analog broadcast): the SNR is side
information at each user's decoder only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from semcom.channels.base import Channel
from semcom.jscc.model import MultiResJscc
from semcom.jscc.zoo import open_model
from semcom.storage import ResolvedWeights
from semcom.systems import LayerOutput

__all__ = ["JsccSystem", "JsccTransmission"]


@dataclass
class JsccTransmission:
    """What :meth:`JsccSystem.prepare` hands to :meth:`JsccSystem.receive`.

    Attributes:
        symbols: ``[B, k_1 + .. + k_L]`` complex64, every layer at power 1 per complex symbol: per image
            for plain models, on average over images for models anchored on a linear code with
            ``power="average"`` (all zoo models), where single images range widely around 1.
        batch: B.
    """

    symbols: torch.Tensor
    batch: int


class JsccSystem:
    """Multi-resolution deep JSCC (Mortaheb et al., 2023) behind the transmission-system interface.

    Args:
        model: a :class:`~semcom.jscc.model.MultiResJscc`, or a zoo name (``"mnist-mr3-awgn"``), the
            path of a ``.safetensors`` checkpoint or weights already resolved
            (:func:`semcom.jscc.zoo.open_model` loads them).
        name: label in results (default: the zoo name / file stem).
        device: where encoding and decoding run.

    Example:
        >>> system = JsccSystem("mnist-mr3-awgn")                     # doctest: +SKIP
        >>> tx = system.prepare(images, user_snrs_db=[5.0, 15.0])      # doctest: +SKIP
        >>> outs = system.receive(tx, build_channel("awgn"), 5.0, 3)   # doctest: +SKIP
        >>> [o.images.shape for o in outs]                            # doctest: +SKIP
    """

    kind = "jscc"

    def __init__(
        self, model: MultiResJscc | str | Path | ResolvedWeights, name: str | None = None, device: str = "cpu"
    ) -> None:
        self.card: dict = {}
        self._weights: ResolvedWeights | None = None
        if isinstance(model, MultiResJscc):
            loaded = model
            label = name or model.config.name
        else:
            loaded, self._weights = open_model(model, device=device)
            if self._weights is not None:
                self.card = self._weights.card
            label = name or (self._weights.name if self._weights is not None else str(model))
        self.model = loaded.to(device).eval()
        self.device = device
        self.name = label

    @property
    def checksums(self) -> dict[str, str]:
        """``{weights file name: sha256}`` of the checkpoint or zoo file loaded (empty for a model object)."""
        return {} if self._weights is None else {self._weights.path.name: self._weights.sha256}

    @property
    def num_layers(self) -> int:
        return self.model.num_layers

    @property
    def layer_symbols(self) -> Sequence[int]:
        """Complex channel uses of each layer, k_1..k_L."""
        return self.model.layer_symbols

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.model.config.image_shape

    @torch.no_grad()
    def prepare(self, images: torch.Tensor, user_snrs_db: Sequence[float] = ()) -> JsccTransmission:
        """Encode ``images`` ``[B, C, H, W]`` in [0, 1] once; the users' SNRs do not change the encoding."""
        x = self.model.encode(images.to(self.device, torch.float32))
        return JsccTransmission(symbols=x, batch=images.shape[0])

    @torch.no_grad()
    def receive(
        self,
        tx: JsccTransmission,
        channel: Channel,
        snr_db: float | torch.Tensor,
        resolution: int,
    ) -> list[LayerOutput]:
        """Send layers 1..``resolution`` through ``channel`` at ``snr_db``; decode with D_1..D_r.

        Returns one :class:`~semcom.systems.LayerOutput` per r = 1..resolution: images ``[B, C, H, W]``
        clamped to [0, 1], logits ``[B, K]`` (None without a semantic head), outage all False (an
        analog link has no decoding failure), and in ``info`` the symbols used and bandwidth ratio.
        """
        self.model._check_resolution(resolution)
        k = self.model.symbols_upto(resolution)
        out = channel(tx.symbols[:, :k], snr_db, layer_sizes=list(self.layer_symbols[:resolution]))
        decoded = self.model.receive(out)
        n = self.model.config.source_dims
        results = []
        for o in decoded:
            used = self.model.symbols_upto(o.layer)
            results.append(
                LayerOutput(
                    layer=o.layer,
                    images=o.images.clamp(0.0, 1.0),
                    logits=o.logits,
                    outage=torch.zeros(tx.batch, dtype=torch.bool, device=o.images.device),
                    info={"symbols": used, "bandwidth_ratio": used / n},
                )
            )
        return results

    def describe(self) -> dict:
        """Facts for the results file: architecture and, from the model card, how it was trained."""
        cfg = self.model.config
        out: dict = {
            "architecture": cfg.name,
            "arch": cfg.arch,
            "layer_symbols": list(cfg.layer_symbols),
            "snr_side_information": cfg.snr_info,
        }
        for key in ("name", "epochs", "channel", "training_snr_db", "sha256"):
            if key in self.card:
                out[f"card_{key}" if key == "name" else key] = self.card[key]
        if "dataset" in self.card:
            out["trained_on"] = {k: self.card["dataset"].get(k) for k in ("name", "split", "images")}
        return out

    def __repr__(self) -> str:
        return f"JsccSystem(name={self.name!r}, layer_symbols={tuple(self.layer_symbols)})"
