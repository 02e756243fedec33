"""Channels built on ``sionna.phy``: AWGN and flat fading (Rayleigh, Rician).

``CHANNELS`` is the registry that scenario files and ``semcom list`` read; plug-ins add channels
through the ``semcom.channels`` entry-point group. Describe one with :class:`ChannelSpec` and build it
with :meth:`ChannelSpec.build`; :func:`build_channel` is the same in one call.
"""

from __future__ import annotations

import torch

from semcom.channels.awgn import AwgnChannel
from semcom.channels.base import BlockLength, Channel, ChannelOutput, Csi, noise_variance
from semcom.channels.fading import RayleighChannel, RicianChannel
from semcom.channels.registry import CHANNELS
from semcom.channels.spec import ChannelSpec

__all__ = [
    "CHANNELS",
    "AwgnChannel",
    "BlockLength",
    "Channel",
    "ChannelOutput",
    "ChannelSpec",
    "Csi",
    "RayleighChannel",
    "RicianChannel",
    "build_channel",
    "noise_variance",
]


def build_channel(
    name: str,
    *,
    block: BlockLength = "image",
    csi: Csi = "perfect",
    k_factor: float | None = None,
    seed: int | None = None,
    device: str | torch.device = "cpu",
) -> Channel:
    """``ChannelSpec(type=name, ...).build(seed, device)``: the channel registered as ``name``."""
    return ChannelSpec(type=name, block=block, csi=csi, k_factor=k_factor).build(seed=seed, device=device)
