"""The SSCC baseline as a :class:`~semcom.systems.TransmissionSystem`: codec + 5G LDPC + QAM.

Multi-resolution SSCC for the comparison of "Semantic Multi-Resolution Communications" (Mortaheb
et al., 2023): L layers with the same symbol counts k_1..k_L as the JSCC. Each layer is one 5G
transport block of k_i symbols. Two ways to fill the layers:

* ``refinement`` (default): layer 1 carries the image; layer i > 1 carries the residual
  ``x - x_hat_{i-1}``, mapped to pixels as ``0.5 + RESIDUAL_GAIN * residual`` and coded with the same
  codec; ``x_hat_i = clip(x_hat_{i-1} + (decoded - 0.5) / RESIDUAL_GAIN)``. A lost layer ends the
  refinement: later layers cannot be used (they refine a picture the user does not have).
* ``simulcast``: every layer carries its own complete encoding at its own budget; a user with layers
  1..r shows the highest layer that decoded.

Bit budget per layer: the SSCC gets exactly the same channel uses as the JSCC, so layer i has k_i
symbols and carries the transport block size of k_i symbols at the MCS
(``bits = k x bits_per_symbol x code_rate`` less CRC, :class:`~semcom.sscc.link.LdpcQamLink`),
less the link's length field, less one byte that carries the codec quality of that image (the
receiver needs it; both are counted). The codec picks the best quality whose payload fits.

MCS: a fixed scheme (``"4QAM-1/2"``); ``"adaptive"``: per layer, the highest-rate scheme whose
BLER (semcom's cached curves) stays below ``target_bler`` at the SNR of the **worst** user in a
broadcast (of each user in ``mode="unicast"``); ``"capacity"``: the ideal, error-free
``floor(k_i log2(1 + |h|^2 SNR))`` bits per layer for each user's own channel draw, no LDPC.

On any failure (CRC, codec, nothing fits, no scheme qualifies) the receiver shows the dataset's
mean image and counts an outage. Nothing here raises on a bad channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from semcom.channels.base import Channel, ChannelOutput
from semcom.sscc.capacity import capacity_bits
from semcom.sscc.codecs import CodecDecodeError, EncodeCache, ImageCodec, build_codec
from semcom.sscc.link import CnUpdate, LdpcDecoder, LdpcQamLink, check_decoder, transport_block_size
from semcom.sscc.mcs import get_mcs, select_mcs
from semcom.sscc.rate_pool import RateMatchingPool
from semcom.sscc.source import RESIDUAL_GAIN, Layering, apply_residual, source_code_image
from semcom.systems import LayerOutput

__all__ = ["RESIDUAL_GAIN", "SsccSystem"]
QUALITY_BITS = 8  # one byte per layer per image tells the receiver the codec quality

Mode = Literal["broadcast", "unicast"]


@dataclass
class _Prepared:
    images: torch.Tensor
    user_snrs_db: list[float]
    encodings: dict[tuple[str, ...], _Encoding] = field(default_factory=dict)


@dataclass
class _Encoding:
    """One encoding of the batch for a list of per-layer MCS names (None = layer not sent)."""

    mcs: list[str | None]
    payloads: list[list[bytes | None]]  # [layer][image], quality byte first
    symbols: list[torch.Tensor | None]  # [layer] -> [B, k_i] complex, None if not sent


class SsccSystem:
    """Separate source-channel coding: image codec, then 5G LDPC + QAM, over L layers.

    Args:
        codec: codec name (``jpeg``, ``webp``, ``hevc-intra``, ...) or an :class:`ImageCodec`.
        mcs: ``"4QAM-1/2"``-style name, ``"adaptive"`` or ``"capacity"``.
        layer_symbols: k_1..k_L, complex channel uses per layer (the JSCC's).
        mean_image: ``[C, H, W]`` shown on outage (the dataset mean).
        layering: ``"refinement"`` or ``"simulcast"`` (module docstring).
        mode: ``"broadcast"`` (one MCS for all users: the worst user's) or ``"unicast"``.
        target_bler: BLER target of adaptive MCS selection.
        bler_channel: which cached BLER tables adaptive selection reads (``"awgn"``).
        num_bp_iter, cn_update: LDPC decoder settings (the default matches the cached BLER tables
            that adaptive selection reads).
        decoder: ``"sionna"`` (the reference, default) or ``"fast"``: the same BP algorithm on
            :class:`~semcom.sscc.ldpc_decoder.FastLdpc5GDecoder` with early stopping, verified against
            Sionna's (same BLER within Monte Carlo intervals, bit-exact on noiseless input); a block
            it decodes differently is rare, so rows can differ from the reference in a few images.
        name: label in results tables.
        device: where the LDPC link runs (codecs always run on the CPU).
        encode_cache: the run's memory of codec encodes (shared by its SSCC systems).
        rate_pool: processes that rate-match the images (:mod:`semcom.sscc.rate_pool`); None: here.
    """

    kind = "sscc"

    def __init__(
        self,
        codec: str | ImageCodec,
        mcs: str,
        layer_symbols: Sequence[int],
        mean_image: torch.Tensor,
        *,
        layering: Layering = "refinement",
        mode: Mode = "broadcast",
        headers: str = "payload",
        target_bler: float = 0.1,
        bler_channel: str = "awgn",
        num_bp_iter: int = 20,
        cn_update: CnUpdate = "boxplus-phi",
        decoder: LdpcDecoder = "sionna",
        name: str | None = None,
        device: str = "cpu",
        encode_cache: EncodeCache | None = None,
        rate_pool: RateMatchingPool | None = None,
    ) -> None:
        if layering not in ("refinement", "simulcast"):
            raise ValueError(f"layering must be 'refinement' or 'simulcast', not {layering!r}")
        if mode not in ("broadcast", "unicast"):
            raise ValueError(f"mode must be 'broadcast' or 'unicast', not {mode!r}")
        if not layer_symbols or any(int(k) <= 0 for k in layer_symbols):
            raise ValueError(f"layer_symbols must be positive counts, got {list(layer_symbols)}")
        self.codec = build_codec(codec, headers=headers) if isinstance(codec, str) else codec
        if encode_cache is not None:
            self.codec.encode_cache = encode_cache
        self.mcs = mcs
        if mcs not in ("adaptive", "capacity"):
            get_mcs(mcs)  # fail early on a bad name
        self._layer_symbols = [int(k) for k in layer_symbols]
        self.mean_image = mean_image.detach().float().cpu()
        self.layering = layering
        self.mode = mode
        self.target_bler = target_bler
        self.bler_channel = bler_channel
        self.num_bp_iter = num_bp_iter
        self.cn_update = cn_update
        check_decoder(decoder, cn_update)  # the links are built later: fail now
        self.decoder = decoder
        self.device = str(device)
        self.name = name or f"sscc-{self.codec.name}-{mcs}"
        self._links: dict[tuple[str, int], LdpcQamLink] = {}
        self.rate_pool = rate_pool

    # ------------------------------------------------------------------ protocol
    @property
    def num_layers(self) -> int:
        return len(self._layer_symbols)

    @property
    def layer_symbols(self) -> list[int]:
        return list(self._layer_symbols)

    def describe(self) -> dict[str, object]:
        """Facts for the results metadata (what accounting was used, and how)."""
        return {"codec": self.codec.name, "header_accounting": self.codec.accounting, "mcs": self.mcs,
                "layering": self.layering, "mode": self.mode, "target_bler": self.target_bler,
                "quality_bits_per_layer": QUALITY_BITS, "ldpc": {"num_bp_iter": self.num_bp_iter,
                                                                 "cn_update": self.cn_update}}

    def prepare(self, images: torch.Tensor, user_snrs_db: Sequence[float]) -> _Prepared:
        if images.dim() != 4 or tuple(images.shape[1:]) != tuple(self.mean_image.shape):
            raise ValueError(f"images must be [B, {', '.join(map(str, self.mean_image.shape))}], got "
                             f"{tuple(images.shape)}")
        return _Prepared(images.detach().float().cpu().clamp(0, 1), [float(s) for s in user_snrs_db])

    def receive(self, tx: _Prepared, channel: Channel, snr_db: float, resolution: int) -> list[LayerOutput]:
        if not 1 <= resolution <= self.num_layers:
            raise ValueError(f"resolution must be in 1..{self.num_layers}, got {resolution}")
        if self.mcs == "capacity":
            return self._receive_ideal(tx, channel, snr_db, resolution)
        design_snr = min(tx.user_snrs_db) if self.mode == "broadcast" and tx.user_snrs_db else snr_db
        mcs = self._choose_mcs(design_snr)
        key = tuple(m or "-" for m in mcs)
        if key not in tx.encodings:
            tx.encodings[key] = self._encode(tx.images, mcs)
        enc = tx.encodings[key]
        out = self._through_channel(enc, channel, len(tx.images), snr_db)
        payloads: list[list[bytes | None]] = []
        for m, k, o, sent in zip(enc.mcs, self._layer_symbols, out, enc.payloads, strict=True):
            row: list[bytes | None] = [None] * len(tx.images)
            rows = [i for i, p in enumerate(sent) if p is not None]
            if m is not None and rows:  # blocks that carry nothing are not decoded (they are outages)
                link = self._link(m, k)
                got = link.unpack_payloads(*link.receive(_rows(o, rows)))
                for i, p in zip(rows, got, strict=True):
                    row[i] = p
            payloads.append(row)
        bits = [[0 if p is None else 8 * len(p) for p in layer] for layer in enc.payloads]
        return self._decode_layers(payloads, resolution, len(tx.images), bits, {"mcs": enc.mcs})

    # ------------------------------------------------------------------ pieces
    def _link(self, mcs: str, k: int) -> LdpcQamLink:
        key = (mcs, k)
        if key not in self._links:
            self._links[key] = LdpcQamLink(mcs, k, num_bp_iter=self.num_bp_iter, cn_update=self.cn_update,
                                            decoder=self.decoder, device=self.device)
        return self._links[key]

    def _choose_mcs(self, snr_db: float) -> list[str | None]:
        if self.mcs != "adaptive":
            return [self.mcs if transport_block_size(self.mcs, k) > 0 else None for k in self._layer_symbols]
        chosen = []
        for k in self._layer_symbols:
            m = select_mcs(snr_db, k, target_bler=self.target_bler, channel=self.bler_channel)
            chosen.append(None if m is None else m.name)
        return chosen

    def _payload_budget_bits(self, mcs: str, k: int) -> int:
        link = self._link(mcs, k)
        return 8 * link.payload_bytes - QUALITY_BITS

    def _source_layers(
        self, images: torch.Tensor, budgets: Sequence[int | Sequence[int] | None]
    ) -> list[list[bytes | None]]:
        """Rate-match every layer: payloads (quality byte + codec payload) per layer and image.

        ``budgets[layer]`` is one bit budget for the whole batch, one per image, or None (not sent).
        Images are coded one by one (:func:`~semcom.sscc.source.source_code_image`), here or in the
        run's :class:`~semcom.sscc.rate_pool.RateMatchingPool`: the same payloads either way.
        """
        per_image = [[b[i] if isinstance(b, Sequence) else b for b in budgets] for i in range(len(images))]
        if self.rate_pool is not None:
            coded = self.rate_pool.code(self.codec, images, per_image, self.layering, self.mean_image)
        else:
            coded = [source_code_image(self.codec, image, b, self.layering, self.mean_image)
                     for image, b in zip(images, per_image, strict=True)]
        return [[coded[i][layer] for i in range(len(images))] for layer in range(len(budgets))]

    def _encode(self, images: torch.Tensor, mcs: list[str | None]) -> _Encoding:
        budgets = [None if m is None else self._payload_budget_bits(m, k)
                   for m, k in zip(mcs, self._layer_symbols, strict=True)]
        payloads = self._source_layers(images, budgets)
        symbols: list[torch.Tensor | None] = []
        for m, k, row in zip(mcs, self._layer_symbols, payloads, strict=True):
            rows = [i for i, p in enumerate(row) if p is not None]
            if m is None or not rows:
                symbols.append(None)
                continue
            # an image with nothing to send leaves its block silent (zeros): nothing to decode there
            link = self._link(m, k)
            x = torch.zeros(len(images), k, dtype=torch.complex64)
            x[rows] = link.transmit(link.pack_payloads([p for p in row if p is not None])).to(x.device)
            symbols.append(x)
        return _Encoding(mcs, payloads, symbols)

    def _through_channel(self, enc: _Encoding, channel: Channel, batch: int, snr_db: float) -> list[ChannelOutput]:
        """All layers in one channel use (so per-image/per-layer fading is drawn once), then split."""
        full = torch.cat([s if s is not None else torch.zeros(batch, k, dtype=torch.complex64)
                          for s, k in zip(enc.symbols, self._layer_symbols, strict=True)], dim=1)
        out = channel(full, snr_db, layer_sizes=self._layer_symbols)
        return _split(out, self._layer_symbols)

    def _decode_layers(self, payloads: list[list[bytes | None]], resolution: int, batch: int,
                       bits: list[list[int]], info: dict[str, object]) -> list[LayerOutput]:
        shape = tuple(self.mean_image.shape)
        current = self.mean_image.expand(batch, *shape).clone()
        ok_so_far = torch.ones(batch, dtype=torch.bool)
        any_ok = torch.zeros(batch, dtype=torch.bool)
        outputs = []
        for layer in range(resolution):
            layer_ok = torch.zeros(batch, dtype=torch.bool)
            for i, p in enumerate(payloads[layer]):
                if p is None or len(p) < 1 or (self.layering == "refinement" and not ok_so_far[i]):
                    continue
                try:
                    decoded = self.codec.decode(p[1:], shape, p[0])
                except CodecDecodeError:
                    continue
                layer_ok[i] = True
                if self.layering == "simulcast" or layer == 0:
                    current[i] = decoded
                else:
                    current[i] = apply_residual(current[i], decoded)
            if self.layering == "refinement":
                ok_so_far &= layer_ok
                outage = ~ok_so_far
            else:
                any_ok |= layer_ok
                outage = ~any_ok
            sent_bits = torch.tensor([sum(b[i] for b in bits[:layer + 1]) for i in range(batch)])
            outputs.append(LayerOutput(layer=layer + 1, images=current.clone(), logits=None,
                                       outage=outage.clone(),
                                       info={**info, "bits_mean": float(sent_bits.float().mean())}))
        return outputs

    def _receive_ideal(
        self, tx: _Prepared, channel: Channel, snr_db: float, resolution: int
    ) -> list[LayerOutput]:
        """Capacity bound: error-free bits per layer from this user's own channel draw."""
        batch = len(tx.images)
        probe = torch.zeros(batch, sum(self._layer_symbols), dtype=torch.complex64)
        parts = _split(channel(probe, snr_db, layer_sizes=self._layer_symbols), self._layer_symbols)
        budgets = []  # per layer, per image: this image's own channel draw
        for part, k in zip(parts, self._layer_symbols, strict=True):
            gains = part.h.expand(batch, k) if part.h.shape[1] == 1 else part.h
            ideal = torch.as_tensor(capacity_bits(k, snr_db, gains=gains)).reshape(-1).expand(batch)
            budgets.append([int(b) - QUALITY_BITS for b in ideal])
        payloads = self._source_layers(tx.images, budgets)
        bits = [[0 if p is None else 8 * len(p) for p in layer] for layer in payloads]
        return self._decode_layers(payloads, resolution, batch, bits, {"mcs": "capacity"})


def _rows(out: ChannelOutput, rows: list[int]) -> ChannelOutput:
    return ChannelOutput(y=out.y[rows], h=out.h[rows], no=out.no[rows], csi=out.csi)


def _split(out: ChannelOutput, sizes: Sequence[int]) -> list[ChannelOutput]:
    parts, start = [], 0
    for k in sizes:
        sl = slice(start, start + k)
        h = out.h if out.h.shape[1] == 1 else out.h[:, sl]
        parts.append(ChannelOutput(y=out.y[:, sl], h=h, no=out.no, csi=out.csi))
        start += k
    return parts
