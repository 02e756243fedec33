"""The channels a scenario may name: the built-in ones and those plug-ins add through entry points."""

from __future__ import annotations

from semcom.channels.awgn import AwgnChannel
from semcom.channels.fading import RayleighChannel, RicianChannel
from semcom.registry import Registry

__all__ = ["CHANNELS"]

CHANNELS = Registry("channels", entry_point_group="semcom.channels")
CHANNELS.add("awgn", AwgnChannel, "AWGN, y = x + n, n ~ CN(0, N0), SNR = Es/N0 per complex symbol")
CHANNELS.add("rayleigh", RayleighChannel, "Rayleigh flat fading, h ~ CN(0,1), block: image/layer/symbol")
CHANNELS.add("rician", RicianChannel, "Rician flat fading with K factor (LOS/scattered power), E|h|^2 = 1")
