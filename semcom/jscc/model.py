"""Multi-resolution deep JSCC: one encoder, L hierarchical layers of symbols, decoders D_1..D_L.

After "Semantic Multi-Resolution Communications" (Mortaheb, Khojastepour, Chakradhar, Ulukus,
2023): the encoder maps an image to L layers of complex channel symbols; a receiver that gets
layers 1..r decodes them with D_r, which sees all of them (current and past layers), so that
quality and accuracy can grow with every layer received. Each decoder carries a semantic head (class logits).
With L = 1 this is the single-layer deep JSCC of "Deep Joint Source-Channel Coding for Wireless
Image Transmission" (Bourtsoulatze, Kurka, Gunduz, 2019); with SNR side information at the
decoder it is SNR-adaptive in the spirit of ADJSCC ("Wireless Image Transmission Using Deep
Source Channel Coding With Attention Modules", Xu, Ai, Chen, Yang, Gunduz, 2021), here reduced to
one extra input feature map per layer.

Power: each layer's ``k_i`` symbols are normalised per image to average power 1 per complex symbol,
``x_i <- x_i * sqrt(k_i / sum_j |x_ij|^2)``. With ``gain_pilot`` the last symbol of each layer is a
constant ``c_i`` before that scaling, so the receiver learns the gain ``s`` from it and undoes it:
``x_hat_i <- x_hat_i / s_hat`` with ``s_hat = x_hat_pilot / c_i``.

Receiver input: with perfect CSI the decoder gets the linear MMSE estimate
``x_hat = conj(h) y / (|h|^2 + N0)`` (bounded in deep fades, unlike zero forcing) and the effective
SNR ``|h|^2 / N0``; without CSI it gets ``y`` and ``1 / N0``. The SNR side information is the mean
effective SNR of each layer, in dB, divided by 20.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from semcom.channels.base import Channel, ChannelOutput
from semcom.jscc.config import JsccConfig

__all__ = ["JsccOutput", "MultiResJscc", "normalize_power", "receiver_input", "symbol_estimate"]

_SNR_SCALE_DB = 20.0


def normalize_power(z: torch.Tensor) -> torch.Tensor:
    """Scale each row of complex ``z`` ``[B, k]`` to average power 1 per complex symbol."""
    power = z.real.square() + z.imag.square()
    return z * torch.rsqrt(power.mean(dim=1, keepdim=True).clamp_min(1e-12))


def _clip01(x: torch.Tensor) -> torch.Tensor:
    """Clip to [0, 1] in the forward pass; identity gradient, so out-of-range outputs are pulled back."""
    return x + (x.clamp(0.0, 1.0) - x).detach()


def _output_map(kind: str):
    """``"sigmoid"``, ``"clamp"`` (:func:`_clip01`) or ``"identity"`` (a residual added elsewhere)."""
    if kind == "identity":
        return nn.Identity()
    return _clip01 if kind == "clamp" else torch.sigmoid


def symbol_estimate(out: ChannelOutput) -> torch.Tensor:
    """The receiver's estimate of the sent symbols, ``[B, n]`` complex, as the CSI allows.

    Perfect CSI: the linear MMSE estimate ``x_hat = conj(h) y / (|h|^2 + N0)`` (bounded in deep
    fades, unlike zero forcing's ``y / h``). No CSI: ``y`` (the gains are not read). The JSCC
    decoders and the semantic receivers both read this.
    """
    if out.csi == "perfect":
        gain = out.h.real.square() + out.h.imag.square()
        return out.y * out.h.conj() / (gain + out.no)
    return out.y


def receiver_input(out: ChannelOutput) -> tuple[torch.Tensor, torch.Tensor]:
    """What the JSCC decoder is fed: symbol estimates ``[B, n]`` complex and effective SNR ``[B, n]``.

    The estimates are :func:`symbol_estimate`'s; the SNR is ``|h|^2 / N0`` with perfect CSI and
    ``1 / N0`` without (the gains are not read).
    """
    x_hat = symbol_estimate(out)
    if out.csi == "perfect":
        gain = out.h.real.square() + out.h.imag.square()
        return x_hat, (gain / out.no).expand_as(out.y.real)
    return x_hat, (1.0 / out.no).expand_as(out.y.real)


@dataclass
class JsccOutput:
    """Decoder D_r's output: ``images`` ``[B, C, H, W]`` in [0, 1] and ``logits`` ``[B, K]`` (or None)."""

    layer: int
    images: torch.Tensor
    logits: torch.Tensor | None


class _ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.PReLU(ch), nn.Conv2d(ch, ch, 3, padding=1))
        self.act = nn.PReLU(ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class _ConvDecoder(nn.Module):
    """D_r (conv): layers 1..r as ``[B, in_ch, H/4, W/4]`` maps -> image ``[B, C, H, W]`` and logits.

    Upsampling is sub-pixel convolution (PixelShuffle): most work stays at 1/4 resolution, which is
    what makes L decoders affordable on a CPU.
    """

    def __init__(
        self,
        in_ch: int,
        width: int,
        out_ch: int,
        num_classes: int,
        latent_hw: tuple[int, int],
        blocks: int = 1,
        hires_blocks: int = 0,
        linear_skip: bool = False,
        output: str = "sigmoid",
    ) -> None:
        super().__init__()
        self.output = _output_map(output)
        # linear shortcut: received maps at 1/4 resolution straight to the output pixels
        self.skip = (
            nn.Sequential(nn.Conv2d(in_ch, 16 * out_ch, 3, padding=1), nn.PixelShuffle(4)) if linear_skip else None
        )
        self.stem = nn.Sequential(
            nn.Conv2d(in_ch, width, 3, padding=1), nn.PReLU(width), *(_ResBlock(width) for _ in range(blocks))
        )
        mid = max(width // 2, 8)
        self.up = nn.Sequential(
            nn.Conv2d(width, 4 * mid, 3, padding=1),
            nn.PixelShuffle(2),
            nn.PReLU(mid),
            *(_ResBlock(mid) for _ in range(hires_blocks)),
            nn.Conv2d(mid, 4 * out_ch, 3, padding=1),
            nn.PixelShuffle(2),
        )
        self.head: nn.Module | None = None
        if num_classes > 0:
            h, w = (latent_hw[0] + 1) // 2, (latent_hw[1] + 1) // 2
            self.head = nn.Sequential(
                nn.Conv2d(width, width, 3, stride=2, padding=1),
                nn.PReLU(width),
                nn.Flatten(),
                nn.Linear(width * h * w, num_classes),
            )

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        f = self.stem(feats)
        pre = self.up(f)
        if self.skip is not None:
            pre = pre + self.skip(feats)
        images = self.output(pre)
        logits = self.head(f) if self.head is not None else None
        return images, logits


class _MlpDecoder(nn.Module):
    """D_r (MLP): layers 1..r as ``[B, in_dim]`` reals -> image ``[B, C, H, W]`` and logits."""

    def __init__(
        self, in_dim: int, width: int, image_shape: tuple[int, int, int], num_classes: int, output: str = "sigmoid"
    ) -> None:
        super().__init__()
        self.image_shape = image_shape
        self.output = _output_map(output)
        self.body = nn.Sequential(nn.Linear(in_dim, width), nn.PReLU(width), nn.Linear(width, width), nn.PReLU(width))
        self.out = nn.Linear(width, math.prod(image_shape))
        self.head = nn.Linear(width, num_classes) if num_classes > 0 else None

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        f = self.body(feats)
        images = self.output(self.out(f)).reshape(-1, *self.image_shape)
        return images, (self.head(f) if self.head is not None else None)


class MultiResJscc(nn.Module):
    """Multi-resolution deep JSCC encoder with decoders D_1..D_L (see module docstring).

    Args:
        config: the architecture (:class:`~semcom.jscc.config.JsccConfig`).

    Shapes: images ``[B, C, H, W]`` float in [0, 1]; symbols ``[B, k_1 + .. + k_L]`` complex64,
    layers concatenated in order; SNR ``[B]`` in dB.

    Example:
        >>> cfg = JsccConfig((1, 28, 28), (44, 43, 43), enc_width=16, dec_width=16)
        >>> model = MultiResJscc(cfg)
        >>> x = model.encode(torch.rand(2, 1, 28, 28))
        >>> x.shape
        torch.Size([2, 130])
    """

    def __init__(self, config: JsccConfig) -> None:
        super().__init__()
        self.config = config
        c = config.image_shape[0]
        fw = config.enc_width
        extra = 1 if config.snr_info else 0
        self.decoders = nn.ModuleList()
        self.skip: nn.Module | None = None
        # pilot amplitudes c_i (log): about 2% of a layer's power with the encoder's initial output scale
        self.pilot_log_amp = (
            nn.Parameter(torch.tensor([math.log(0.05 * math.sqrt(k - 1)) for k in config.layer_symbols]))
            if config.gain_pilot
            else None
        )
        if config.arch == "mlp":
            n = math.prod(config.image_shape)
            self.trunk = nn.Sequential(nn.Flatten(), nn.Linear(n, fw), nn.PReLU(fw), nn.Linear(fw, fw), nn.PReLU(fw))
            self.heads = nn.ModuleList(nn.Linear(fw, 2 * k) for k in config.layer_symbols)
            in_dim = 0
            for k in config.layer_symbols:
                in_dim += 2 * k + extra
                self.decoders.append(
                    _MlpDecoder(in_dim, config.dec_width, config.image_shape, config.num_classes, config.output)
                )
            return
        self.trunk = nn.Sequential(
            nn.Conv2d(c, fw // 2, 5, stride=2, padding=2),
            nn.PReLU(fw // 2),
            *(_ResBlock(fw // 2) for _ in range(config.hires_blocks)),
            nn.Conv2d(fw // 2, fw, 5, stride=2, padding=2),
            nn.PReLU(fw),
            *(_ResBlock(fw) for _ in range(config.enc_blocks)),
        )
        # linear shortcut: 4x4 pixel blocks straight to the features the layer heads read
        self.skip = nn.Sequential(nn.PixelUnshuffle(4), nn.Conv2d(16 * c, fw, 1)) if config.linear_skip else None
        self.heads = nn.ModuleList(nn.Conv2d(fw, ci, 3, padding=1) for ci in config.layer_channels)
        in_ch = 0
        for ci in config.layer_channels:
            in_ch += ci + extra
            self.decoders.append(
                _ConvDecoder(
                    in_ch,
                    config.dec_width,
                    c,
                    config.num_classes,
                    config.latent_hw,
                    blocks=config.dec_blocks,
                    hires_blocks=config.hires_blocks,
                    linear_skip=config.linear_skip,
                    output=config.output,
                )
            )

    # -- bookkeeping -------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return self.config.num_layers

    @property
    def layer_symbols(self) -> tuple[int, ...]:
        return self.config.layer_symbols

    def symbols_upto(self, resolution: int) -> int:
        """Complex symbols in layers 1..resolution."""
        self._check_resolution(resolution)
        return sum(self.config.layer_symbols[:resolution])

    def _check_resolution(self, resolution: int) -> None:
        if not 1 <= resolution <= self.num_layers:
            raise ValueError(f"resolution must be in 1..{self.num_layers}, got {resolution}")

    # -- transmitter -------------------------------------------------------------------------
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, H, W]`` -> symbols ``[B, k_1 + .. + k_L]`` complex, unit power per layer."""
        if images.dim() != 4 or tuple(images.shape[1:]) != self.config.image_shape:
            raise ValueError(
                f"expected images [B, {', '.join(map(str, self.config.image_shape))}], got {tuple(images.shape)}"
            )
        feats = self.trunk(images)
        if self.skip is not None:
            feats = feats + self.skip(images)
        layers = []
        for i, (head, k) in enumerate(zip(self.heads, self.config.layer_symbols, strict=True)):
            reals = head(feats).flatten(1)[:, : 2 * k]  # conv: first 2k reals of c_i maps; mlp: exactly 2k
            z = torch.view_as_complex(reals.reshape(-1, k, 2).contiguous())
            if self.pilot_log_amp is not None:
                pilot = self.pilot_log_amp[i].exp().to(z.real.dtype).expand(z.shape[0], 1)
                z = torch.cat([z[:, : k - 1], torch.complex(pilot, torch.zeros_like(pilot))], dim=1)
            layers.append(normalize_power(z))
        return torch.cat(layers, dim=1)

    def split_layers(self, symbols: torch.Tensor) -> list[torch.Tensor]:
        """Cut ``[B, k_1 + .. + k_r]`` into the r layers (r inferred from the width)."""
        out, start = [], 0
        for k in self.config.layer_symbols:
            if start >= symbols.shape[1]:
                break
            out.append(symbols[:, start : start + k])
            start += k
        if start != symbols.shape[1]:
            raise ValueError(f"{symbols.shape[1]} symbols is not a whole number of layers {self.layer_symbols}")
        return out

    # -- receiver ----------------------------------------------------------------------------
    def _layer_maps(self, symbols: torch.Tensor, snr_db: torch.Tensor | None) -> list[torch.Tensor]:
        """Per layer: decoder input, ``[B, c_i (+1), h, w]`` maps (conv) or ``[B, 2 k_i (+1)]`` (mlp)."""
        h, w = self.config.latent_hw
        conv = self.config.arch == "conv"
        maps = []
        start = 0
        for i, k in enumerate(self.config.layer_symbols[: self._layers_in(symbols)]):
            z = symbols[:, start : start + k]
            if self.pilot_log_amp is not None:
                z = self._remove_gain(z, i)
            m = torch.view_as_real(z.contiguous()).reshape(z.shape[0], 2 * k)
            if conv:
                size = self.config.layer_channels[i] * h * w
                if size > 2 * k:
                    m = nn.functional.pad(m, (0, size - 2 * k))
                m = m.reshape(-1, self.config.layer_channels[i], h, w)
            if self.config.snr_info:
                if snr_db is None:
                    raise ValueError("this model needs the SNR at the decoder (snr_info=True)")
                s = (snr_db[:, i] if snr_db.dim() == 2 else snr_db) / _SNR_SCALE_DB
                s = s.reshape(-1, 1, 1, 1).expand(-1, 1, h, w) if conv else s.reshape(-1, 1)
                m = torch.cat([m, s], dim=1)
            maps.append(m)
            start += k
        return maps

    def _remove_gain(self, z: torch.Tensor, layer: int) -> torch.Tensor:
        """Divide a received layer ``[B, k]`` by its gain estimate ``s_hat = pilot / c`` (pilot: last symbol).

        ``|pilot|`` is floored at ``0.02 sqrt(k)`` (a pilot with 0.04% of the layer's power) so that a
        deep fade or a very noisy pilot cannot blow the layer up.
        """
        assert self.pilot_log_amp is not None  # only models with a gain pilot call this
        k = z.shape[1]
        p = z[:, -1:]
        mag = p.abs().clamp_min(0.02 * math.sqrt(k))
        phase = torch.where(p.abs() > 0, p / p.abs().clamp_min(1e-30), torch.ones_like(p))
        s_hat = phase * mag / self.pilot_log_amp[layer].exp()
        return z / s_hat

    def _layers_in(self, symbols: torch.Tensor) -> int:
        return len(self.split_layers(symbols))

    def decode(
        self,
        symbols: torch.Tensor,
        snr_db: torch.Tensor | float | None,
        resolutions: Sequence[int] | None = None,
    ) -> list[JsccOutput]:
        """Decode received symbol estimates of layers 1..r with D_1..D_r (or only ``resolutions``).

        Args:
            symbols: ``[B, k_1 + .. + k_r]`` complex (equalised estimates).
            snr_db: decoder SNR side information: float, ``[B]`` (all layers) or ``[B, r]`` (per layer).
            resolutions: which decoders to run (1-based); default all r.

        Returns:
            One :class:`JsccOutput` per requested decoder; D_j reads only layers 1..j.
        """
        r = self._layers_in(symbols)
        if snr_db is not None:
            snr_db = torch.as_tensor(snr_db, dtype=torch.float32, device=symbols.device)
            if snr_db.dim() == 0:
                snr_db = snr_db.expand(symbols.shape[0])
        maps = self._layer_maps(symbols, snr_db)
        wanted = list(range(1, r + 1)) if resolutions is None else list(resolutions)
        outs = []
        for j in wanted:
            if not 1 <= j <= r:
                raise ValueError(f"decoder {j} needs layers 1..{j}, only {r} received")
            images, logits = self.decoders[j - 1](torch.cat(maps[:j], dim=1))
            outs.append(JsccOutput(j, images, logits))
        return outs

    def semantic_heads(self) -> list[nn.Module]:
        """The decoders' semantic heads (what ``heads_only`` training updates)."""
        return [head for d in self.decoders if isinstance(head := d.head, nn.Module)]

    def receive(self, out: ChannelOutput, resolutions: Sequence[int] | None = None) -> list[JsccOutput]:
        """Decode a channel output of layers 1..r (:func:`receiver_input`) with D_1..D_r (or ``resolutions``)."""
        x_hat, snr = receiver_input(out)
        return self.decode(x_hat, self.layer_snr_db(snr, self._layers_in(x_hat)), resolutions)

    def layer_snr_db(self, snr: torch.Tensor, resolution: int) -> torch.Tensor:
        """Mean effective SNR of each layer in dB, ``[B, r]``, from per-symbol linear SNR ``[B, n]``."""
        sizes = list(self.config.layer_symbols[:resolution])
        means = torch.stack([s.mean(dim=1) for s in torch.split(snr, sizes, dim=1)], dim=1)
        return 10.0 * torch.log10(means.clamp_min(1e-6))

    def forward(
        self,
        images: torch.Tensor,
        channel: Channel,
        snr_db: float | torch.Tensor,
        resolution: int | None = None,
    ) -> list[JsccOutput]:
        """Encode, send layers 1..r through ``channel`` at ``snr_db`` (float or ``[B]``), decode: D_1..D_r."""
        r = self.num_layers if resolution is None else resolution
        k = self.symbols_upto(r)
        x = self.encode(images)[:, :k]
        return self.receive(channel(x, snr_db, layer_sizes=list(self.config.layer_symbols[:r])))
