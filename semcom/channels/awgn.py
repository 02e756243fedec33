"""Additive white Gaussian noise channel."""

from __future__ import annotations

from semcom.channels.base import Channel

__all__ = ["AwgnChannel"]


class AwgnChannel(Channel):
    """AWGN: ``y = x + n``, ``n ~ CN(0, N0)`` with ``N0 = 10^(-SNR_dB/10)`` (Sionna ``AWGN``).

    Input ``x``: ``[B, n]`` complex; ``snr_db``: float or ``[B]``. Output: :class:`ChannelOutput`
    with ``h = 1``. Block length and CSI have no effect on an AWGN channel.

    Example:
        >>> ch = AwgnChannel(seed=0)
        >>> out = ch(torch.ones(2, 8, dtype=torch.complex64), snr_db=10.0)
        >>> out.y.shape
        torch.Size([2, 8])
    """

    name = "awgn"
