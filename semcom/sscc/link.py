"""The digital link of the SSCC baseline: 5G LDPC transport blocks over QAM, built on ``sionna.phy``.

Bit budget: the SSCC gets exactly the same channel uses as the JSCC. ``k`` complex channel uses with
a ``2^m``-QAM carry ``N = k m`` coded bits, and a code of rate ``R`` carries ``k m R`` bits. Those bits
include the transport-block CRC, so the payload (the TB size, TBS) is the largest size allowed by
5G NR (TS 38.214 Sec. 5.1.3.2, as computed by ``sionna.phy.nr.utils.calculate_tb_size``) with

    TBS + L_TB + C L_CB <= floor(k m R),

``L_TB = 16`` (TBS <= 3824) or 24, and ``L_CB = 24`` per code block when the TB is segmented into
``C > 1`` blocks (``L_CB = 0`` otherwise). The LDPC code thus never runs above the nominal rate ``R``
(the CRC is *subtracted from* the budget, not added on top as a 5G scheduler would). When not even the
smallest TB (24 bits + CRC16) fits, the link carries nothing: :func:`transport_block_size` returns 0
and :class:`LdpcQamLink` refuses to be built, so the caller counts an outage.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Sequence
from fractions import Fraction
from functools import lru_cache
from typing import Any, Literal, cast

import numpy as np
import torch

from semcom.channels.base import Channel, ChannelOutput
from semcom.sscc.ldpc_decoder import fast_tb_decoder
from semcom.sscc.mcs import Mcs, get_mcs

__all__ = ["DECODERS", "CnUpdate", "LdpcDecoder", "LdpcQamLink", "check_decoder", "transport_block_size"]

CnUpdate = Literal["minsum", "offset-minsum", "boxplus-phi", "boxplus"]
LdpcDecoder = Literal["sionna", "fast"]
DECODERS: tuple[str, ...] = ("sionna", "fast")

_TBS_MIN = 24  # smallest 5G NR TB size (TS 38.214 Table 5.1.3.2-1)


@lru_cache(maxsize=1024)
def _tb_layout(m: int, rate: Fraction, num_symbols: int) -> tuple[int, int]:
    """(TBS, CRC bits) of the largest TB that fits ``floor(k m R)`` bits; (0, 0) if none."""
    from sionna.phy.nr.utils import calculate_tb_size

    budget = math.floor(num_symbols * m * rate)
    if budget < _TBS_MIN + 16:
        return 0, 0
    targets = torch.arange(_TBS_MIN, budget + 1, dtype=torch.float32)
    order = torch.full(targets.shape, m, dtype=torch.int32)
    tbs, _, num_cb, tb_crc, cb_crc = calculate_tb_size(
        modulation_order=order, target_coderate=float(rate), target_tb_size=targets,
        num_coded_bits=torch.full(targets.shape, num_symbols * m, dtype=torch.int32),
        return_cw_length=False, device="cpu",
    )
    crc = tb_crc + num_cb * cb_crc
    fits = (tbs + crc) <= budget
    if not bool(fits.any()):
        return 0, 0
    best = int(torch.argmax(torch.where(fits, tbs, -1)))
    return int(tbs[best]), int(crc[best])


def transport_block_size(mcs: Mcs | str, num_symbols: int) -> int:
    """Payload bits (TBS, CRC excluded) that ``num_symbols`` channel uses carry with ``mcs``.

    ``TBS`` is the largest 5G NR TB size with ``TBS + CRC <= floor(k m R)`` (module docstring); 0 when
    nothing fits (fewer than ``40 / (m R)`` symbols), which the caller counts as an outage.

    Example:
        >>> transport_block_size("4QAM-1/2", 512)  # budget 512 bits: TBS 480 + CRC16 (504 + 16 > 512)
        480
    """
    mcs = get_mcs(mcs)
    if num_symbols < 1:
        return 0
    return _tb_layout(mcs.modulation_order, mcs.code_rate, int(num_symbols))[0]


@lru_cache(maxsize=128)
def _tb_codec(tbs: int, n: int, rate: float, m: int, num_bp_iter: int, cn_update: str,
              device: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    from sionna.phy.nr import TBDecoder, TBEncoder

    with contextlib.redirect_stdout(io.StringIO()):  # Sionna prints a note when it pads the TB
        enc = TBEncoder(target_tb_size=tbs, num_coded_bits=n, target_coderate=rate, num_bits_per_symbol=m,
                        verbose=False, device=device)
        dec = TBDecoder(enc, num_bp_iter=num_bp_iter, cn_update=cn_update, device=device)
    if enc.tb_size != tbs or enc.n != n:
        raise ValueError(f"Sionna quantised the TB to {enc.tb_size} bits instead of {tbs}")
    return enc, dec


@lru_cache(maxsize=128)
def _fast_tb_decoder(tbs: int, n: int, rate: float, m: int, num_bp_iter: int, cn_update: str,
                     device: str) -> torch.nn.Module:
    enc, _ = _tb_codec(tbs, n, rate, m, num_bp_iter, cn_update, device)
    with contextlib.redirect_stdout(io.StringIO()):
        return fast_tb_decoder(enc, num_bp_iter=num_bp_iter, cn_update=cast(Any, cn_update), device=device)


@lru_cache(maxsize=16)
def _qam(m: int, device: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    from sionna.phy.mapping import Demapper, Mapper

    return Mapper("qam", m, device=device), Demapper("app", "qam", m, device=device)


def check_decoder(decoder: str, cn_update: str) -> None:
    """Refuse an unknown LDPC decoder, or a check-node rule the fast decoder does not run (ValueError)."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {', '.join(DECODERS)}; got {decoder!r}")
    if decoder == "fast" and cn_update not in ("boxplus-phi", "minsum"):
        raise ValueError(f"the fast decoder runs cn_update 'boxplus-phi' or 'minsum', not {cn_update!r}")


class LdpcQamLink(torch.nn.Module):
    r"""Info bits -> 5G LDPC transport block -> ``2^m``-QAM -> channel -> APP demapper -> TB decoder.

    Transmitter: Sionna's ``TBEncoder`` (TB CRC, code-block segmentation and CRC, LDPC base graph 1
    or 2, rate matching to exactly ``N = k m`` bits, bit interleaving, scrambling) and the Gray QAM
    ``Mapper`` (unit average power). Receiver: with perfect CSI the channel output is equalised,
    :math:`\hat x = y / h` with noise :math:`N_0 / |h|^2` per symbol (without CSI the raw ``y`` and
    :math:`N_0` are used, which only works when ``h = 1``); the ``"app"`` ``Demapper`` gives LLRs
    :math:`\ln P(b=1)/P(b=0)` and ``TBDecoder`` runs ``num_bp_iter`` BP iterations and checks the TB
    CRC. A decoding failure is ``ok = False``, never an exception.

    Bit budget: ``info_bits = TBS`` with ``TBS + CRC <= floor(k m R)`` (module docstring), so the
    rate of the LDPC code, ``(TBS + CRC) / (k m)``, is at most ``R``.

    Encoders and decoders are cached per configuration and shared between links.

    Args:
        mcs: the modulation and coding scheme (or its name, e.g. ``"16QAM-2/3"``).
        num_symbols: complex channel uses per block ``k``.
        num_bp_iter: BP iterations of the LDPC decoder.
        cn_update: check-node rule of the BP decoder. Default ``"boxplus-phi"`` (Sionna's default, exact
            sum-product): ``"minsum"`` decodes only a little faster and its waterfall is worse
            (``bench/bench_link.py``, docs/benchmarks.md), so the better decoder is the default. The
            cached BLER tables (:mod:`semcom.sscc.mcs`, made by :mod:`semcom.sscc.bler`) use this
            default and 20 iterations; a link with another decoder should not use them for MCS
            selection.
        device: where the blocks run; fixed at construction.
        decoder: ``"sionna"`` (default, the reference: Sionna's ``TBDecoder``) or ``"fast"``: the same
            TB decoder with its LDPC stage run by :class:`~semcom.sscc.ldpc_decoder.FastLdpc5GDecoder`
            (same code and BP rule, a faster kernel that stops a block once it is a codeword;
            ``cn_update`` ``"boxplus-phi"`` or ``"minsum"`` only). Verified against Sionna's by
            ``tests/test_ldpc_decoder.py`` and ``bench/bench_ldpc_verify.py``.

    Input:
        bits: ``[B, info_bits]`` 0/1 (any real or integer dtype).
        channel: a :class:`~semcom.channels.Channel`.
        snr_db: float or ``[B]``, Es/N0 per complex symbol in dB.

    Output:
        bits_hat: ``[B, info_bits]`` ``float32`` 0/1, the decoded payload.
        ok: ``[B]`` ``bool``, True where the TB CRC passed.

    Raises:
        ValueError: when no transport block fits ``num_symbols`` symbols with this MCS
            (:func:`transport_block_size` is 0).

    Example:
        >>> from semcom.channels import build_channel
        >>> link = LdpcQamLink("4QAM-1/2", num_symbols=512)
        >>> link.info_bits, link.crc_bits, link.num_coded_bits
        (480, 16, 1024)
        >>> bits = torch.randint(0, 2, (8, link.info_bits))
        >>> bits_hat, ok = link(bits, build_channel("awgn", seed=0), snr_db=10.0)
        >>> bool(ok.all()), bool((bits_hat == bits).all())
        (True, True)
    """

    def __init__(
        self,
        mcs: Mcs | str,
        num_symbols: int,
        num_bp_iter: int = 20,
        cn_update: CnUpdate = "boxplus-phi",
        device: str | torch.device = "cpu",
        decoder: LdpcDecoder = "sionna",
    ) -> None:
        super().__init__()
        check_decoder(decoder, cn_update)
        self.decoder = str(decoder)
        self.mcs = get_mcs(mcs)
        self.num_symbols = int(num_symbols)
        self.num_bp_iter = int(num_bp_iter)
        self.cn_update = str(cn_update)
        self.device = str(device)
        m, rate = self.mcs.modulation_order, float(self.mcs.code_rate)
        tbs, crc = _tb_layout(m, self.mcs.code_rate, self.num_symbols) if self.num_symbols > 0 else (0, 0)
        if tbs == 0:
            need = math.ceil((_TBS_MIN + 16) / (m * self.mcs.code_rate))
            raise ValueError(
                f"no transport block fits {self.num_symbols} symbols with {self.mcs.name}: the smallest TB "
                f"(24 bits + CRC16) needs floor(k m R) >= 40, i.e. k >= {need}; count this as an outage "
                f"(transport_block_size() returns 0)"
            )
        self._tbs, self._crc = tbs, crc
        try:
            enc, dec = _tb_codec(tbs, self.num_coded_bits, rate, m, self.num_bp_iter, self.cn_update,
                                 self.device)
            if self.decoder == "fast":
                dec = _fast_tb_decoder(tbs, self.num_coded_bits, rate, m, self.num_bp_iter, self.cn_update,
                                       self.device)
        except (ValueError, AssertionError) as exc:
            raise ValueError(f"Sionna cannot build a TB of {tbs} bits in {self.num_coded_bits} coded bits "
                             f"({self.mcs.name}): {exc}") from exc
        # shared, cached Sionna blocks: kept in a tuple so that they are not registered as submodules
        # (moving one link to another device must not move the blocks of the others)
        self._blocks = (enc, dec, *_qam(m, self.device))

    @property
    def _encoder(self) -> torch.nn.Module:
        return self._blocks[0]

    @property
    def _decoder(self) -> torch.nn.Module:
        return self._blocks[1]

    @property
    def _mapper(self) -> torch.nn.Module:
        return self._blocks[2]

    @property
    def _demapper(self) -> torch.nn.Module:
        return self._blocks[3]

    # ---------------------------------------------------------------- budget
    @property
    def info_bits(self) -> int:
        """Payload bits per block (the TB size, CRC excluded)."""
        return self._tbs

    @property
    def crc_bits(self) -> int:
        """CRC bits per block: 16 or 24 for the TB, plus 24 per code block when segmented."""
        return self._crc

    @property
    def num_coded_bits(self) -> int:
        """Coded bits per block, ``N = k m``."""
        return self.num_symbols * self.mcs.modulation_order

    @property
    def code_rate(self) -> float:
        """Real LDPC code rate ``(TBS + CRC) / N`` (at most the nominal rate)."""
        return (self._tbs + self._crc) / self.num_coded_bits

    @property
    def num_code_blocks(self) -> int:
        """LDPC code blocks per TB (1 up to 3824 payload bits at these rates)."""
        return int(cast(Any, self._encoder).num_cbs)

    # ---------------------------------------------------------------- the chain
    @torch.no_grad()
    def encode(self, bits: torch.Tensor) -> torch.Tensor:
        """Payload bits ``[B, info_bits]`` -> coded bits ``[B, N]`` float32 (TB CRC, LDPC, rate matching)."""
        if bits.dim() != 2 or bits.shape[-1] != self._tbs:
            raise ValueError(f"bits must be [B, {self._tbs}], got {tuple(bits.shape)}")
        return self._encoder(bits.to(device=self.device, dtype=torch.float32))

    @torch.no_grad()
    def modulate(self, coded: torch.Tensor) -> torch.Tensor:
        """Coded bits ``[B, N]`` -> Gray QAM symbols ``[B, num_symbols]`` complex64, unit average power."""
        return self._mapper(coded.to(device=self.device, dtype=torch.float32))

    def transmit(self, bits: torch.Tensor) -> torch.Tensor:
        """Payload bits ``[B, info_bits]`` -> channel symbols ``[B, num_symbols]`` complex64."""
        return self.modulate(self.encode(bits))

    @torch.no_grad()
    def llr(self, out: ChannelOutput) -> torch.Tensor:
        """Channel output -> LLRs ``ln P(b=1)/P(b=0)`` of the coded bits, ``[B, N]`` float32.

        Perfect CSI: equalised symbols with noise ``N0 / |h|^2`` per symbol; no CSI: ``y`` and ``N0``.
        Non-finite values (``h = 0``) are replaced by 0 (no information).
        """
        x_hat, no = out.receiver_view()
        llr = self._demapper(x_hat, no.clamp_min(1e-12))
        return torch.nan_to_num(llr, nan=0.0, posinf=0.0, neginf=0.0)

    @torch.no_grad()
    def decode(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """LLRs ``[B, N]`` -> (bits_hat ``[B, info_bits]`` float32, ok ``[B]`` bool: TB CRC passed)."""
        bits_hat, ok = self._decoder(llr)
        return bits_hat, ok.reshape(-1)

    def receive(self, out: ChannelOutput) -> tuple[torch.Tensor, torch.Tensor]:
        """Channel output -> (bits_hat ``[B, info_bits]`` float32, ok ``[B]`` bool)."""
        return self.decode(self.llr(out))

    def forward(
        self,
        bits: torch.Tensor,
        channel: Channel,
        snr_db: float | torch.Tensor,
        layer_sizes: Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.transmit(bits)
        with torch.no_grad():
            out = channel(x, snr_db, layer_sizes=layer_sizes)
        return self.receive(out)

    # ---------------------------------------------------------------- bytes
    @property
    def length_field_bits(self) -> int:
        """Bits of the length field in front of a byte payload: ``bit_length(floor(info_bits / 8))``."""
        return max(1, (self._tbs // 8).bit_length())

    @property
    def payload_bytes(self) -> int:
        """Largest byte payload per block: ``floor((info_bits - length_field_bits) / 8)``."""
        return (self._tbs - self.length_field_bits) // 8

    def pack_payloads(self, payloads: Sequence[bytes]) -> torch.Tensor:
        """Byte payloads -> TB bits ``[B, info_bits]`` float32.

        Layout of each TB (MSB first): the payload length in bytes on ``length_field_bits`` bits, the
        payload bytes, zeros up to ``info_bits``. The length field is counted in the budget: a block
        carries at most :attr:`payload_bytes` bytes.
        """
        lf, cap = self.length_field_bits, self.payload_bytes
        rows = np.zeros((len(payloads), self._tbs), dtype=np.uint8)
        for i, p in enumerate(payloads):
            p = bytes(p)
            if len(p) > cap:
                raise ValueError(f"payload {i} has {len(p)} bytes; a {self.mcs.name} block of "
                                 f"{self.num_symbols} symbols carries at most {cap}")
            rows[i, :lf] = [(len(p) >> (lf - 1 - j)) & 1 for j in range(lf)]
            rows[i, lf:lf + 8 * len(p)] = np.unpackbits(np.frombuffer(p, dtype=np.uint8))
        return torch.from_numpy(rows).to(device=self.device, dtype=torch.float32)

    def unpack_payloads(self, bits: torch.Tensor, ok: torch.Tensor) -> list[bytes | None]:
        """Inverse of :meth:`pack_payloads`; ``None`` where ``ok`` is False or the length is invalid."""
        lf, cap = self.length_field_bits, self.payload_bytes
        arr = bits.detach().to("cpu").round().to(torch.uint8).numpy()
        out: list[bytes | None] = []
        for row, good in zip(arr, ok.detach().to("cpu").tolist(), strict=True):
            length = int(sum(int(b) << (lf - 1 - j) for j, b in enumerate(row[:lf])))
            if not good or length > cap:
                out.append(None)
                continue
            out.append(np.packbits(row[lf:lf + 8 * length]).tobytes())
        return out

    def send_payloads(
        self,
        payloads: Sequence[bytes],
        channel: Channel,
        snr_db: float | torch.Tensor,
        layer_sizes: Sequence[int] | None = None,
    ) -> list[bytes | None]:
        """Send one byte payload per block (each <= :attr:`payload_bytes`) and return what arrived.

        Returns the received bytes per payload, or ``None`` where the TB CRC failed (an outage).
        """
        bits = self.pack_payloads(payloads)
        bits_hat, ok = self(bits, channel, snr_db, layer_sizes=layer_sizes)
        return self.unpack_payloads(bits_hat, ok)

    def extra_repr(self) -> str:
        return (f"mcs={self.mcs.name}, num_symbols={self.num_symbols}, info_bits={self._tbs}, "
                f"crc_bits={self._crc}, num_bp_iter={self.num_bp_iter}, cn_update={self.cn_update}"
                + (f", decoder={self.decoder}" if self.decoder != "sionna" else ""))
