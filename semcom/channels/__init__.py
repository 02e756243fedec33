"""Channels built on ``sionna.phy``: AWGN and flat fading (Rayleigh, Rician).

``CHANNELS`` is the registry that scenario files and ``semcom list`` read; plug-ins add channels
through the ``semcom.channels`` entry-point group. Build one with :func:`build_channel`.
"""

from __future__ import annotations

from typing import Any

from semcom.channels.awgn import AwgnChannel
from semcom.channels.base import BlockLength, Channel, ChannelOutput, Csi, noise_variance
from semcom.channels.fading import RayleighChannel, RicianChannel
from semcom.registry import Registry

__all__ = [
    "CHANNELS",
    "AwgnChannel",
    "BlockLength",
    "Channel",
    "ChannelOutput",
    "Csi",
    "RayleighChannel",
    "RicianChannel",
    "build_channel",
    "noise_variance",
]

CHANNELS = Registry("channels", entry_point_group="semcom.channels")
CHANNELS.add("awgn", AwgnChannel, "AWGN, y = x + n, n ~ CN(0, N0), SNR = Es/N0 per complex symbol")
CHANNELS.add("rayleigh", RayleighChannel, "Rayleigh flat fading, h ~ CN(0,1), block: image/layer/symbol")
CHANNELS.add("rician", RicianChannel, "Rician flat fading with K factor (LOS/scattered power), E|h|^2 = 1")


def build_channel(name: str, **kwargs: Any) -> Channel:
    """Build the channel registered as ``name`` (``awgn``, ``rayleigh``, ``rician``, plug-ins)."""
    if name in ("awgn", "rayleigh"):  # no K factor to set: accept and ignore one from a scenario file
        kwargs.pop("k_factor", None)
    return CHANNELS.create(name, **kwargs)
