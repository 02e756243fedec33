"""The transmission-system interface the scenario runner drives (JSCC and SSCC alike).

A broadcast serves several users from one encoding: :meth:`TransmissionSystem.prepare` encodes a
batch once (for SSCC it also fixes the MCS for the worst user); :meth:`TransmissionSystem.receive`
is then called once per user with that user's own channel realisation and SNR, and returns what the
user's receiver rebuilt from layers 1..r for every r up to the resolution it asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from semcom.channels.base import Channel

__all__ = ["LayerOutput", "TransmissionSystem"]


@dataclass
class LayerOutput:
    """What a receiver rebuilt from layers 1..r.

    Attributes:
        layer: r (1-based).
        images: ``[B, C, H, W]`` float in [0, 1] (the dataset mean image where the link failed).
        logits: ``[B, num_classes]`` class scores, or ``None`` if this system carries no semantics.
        outage: ``[B]`` bool, True where decoding failed (LDPC/CRC, codec, nothing fit the budget).
        info: extra per-batch facts (chosen MCS, codec quality, bits sent, ...) for the results.
    """

    layer: int
    images: torch.Tensor
    logits: torch.Tensor | None = None
    outage: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class TransmissionSystem(Protocol):
    """Something that sends images over a channel in L layers (see module docstring)."""

    name: str
    kind: str  # "jscc" or "sscc"; plots draw JSCC solid and SSCC dashed

    @property
    def num_layers(self) -> int: ...

    @property
    def layer_symbols(self) -> Sequence[int]:
        """Complex channel uses of each layer, k_1..k_L."""
        ...

    def prepare(self, images: torch.Tensor, user_snrs_db: Sequence[float]) -> Any:
        """Encode ``images`` ``[B, C, H, W]`` once for a broadcast to users at these SNRs."""
        ...

    def receive(self, tx: Any, channel: Channel, snr_db: float, resolution: int) -> list[LayerOutput]:
        """One user's reception of ``tx``: outputs for layers 1..resolution (in order)."""
        ...
