"""The channel settings, written once: a validated record that builds the channel it describes.

Scenario files, ``semcom train``, ``semcom train-receiver`` and the benchmarks all describe a channel
with these four fields; :meth:`ChannelSpec.build` is the one place that turns them into a
:class:`~semcom.channels.base.Channel`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from semcom.channels.base import Channel

__all__ = ["ChannelSpec"]


class ChannelSpec(BaseModel):
    """The channel every user sees (each user gets its own realisation)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field("awgn", description="channel from `semcom list channels`: awgn, rayleigh, rician")
    k_factor: float | None = Field(None, ge=0, allow_inf_nan=False,
                                   description="Rician K factor (linear, LOS/scattered power); rician only")
    block: Literal["image", "layer", "symbol"] = Field("image", description="how long one fading gain lasts: "
                                                                            "image, layer or symbol")
    csi: Literal["perfect", "none"] = Field("perfect", description="receiver CSI: perfect or none")

    def build(self, seed: int | None = None, device: str | torch.device = "cpu") -> Channel:
        """The channel, with its own generator seeded by ``seed`` (``None``: random) on ``device``.

        ``k_factor`` belongs to the Rician channel; AWGN and Rayleigh refuse one rather than ignore it.
        """
        from semcom.channels.registry import CHANNELS  # lazy: the channels import Sionna

        # Scenario.problems reports this with the YAML line; the check here guards every other caller.
        if self.k_factor is not None and self.type in ("awgn", "rayleigh"):
            raise ValueError(f"k_factor only applies to the rician channel, not '{self.type}'")
        kwargs: dict[str, Any] = {"block": self.block, "csi": self.csi, "seed": seed, "device": device}
        if self.k_factor is not None:
            kwargs["k_factor"] = self.k_factor
        return CHANNELS.create(self.type, **kwargs)

    def describe(self) -> str:
        """A short label: ``rician K=3``, ``awgn``."""
        return self.type + (f" K={self.k_factor:g}" if self.k_factor is not None else "")
