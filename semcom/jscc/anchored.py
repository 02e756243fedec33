"""Multi-resolution JSCC anchored on the linear analog code: linear paths plus learned refinements.

The transmitter sends the linear code's scaled coefficients plus a learned correction,
``t = g ⊙ U^T (x - mean) + E(x)``; receiver ``D_r`` forms the linear code's LMMSE image from layers
1..r and adds a learned correction, ``x_hat_r = x_lin_r + R_r(x_lin_r, SNR)``
(:class:`~semcom.analog.code.LinearAnalogCode` holds ``U``, ``g`` and the LMMSE). ``E`` and ``R_r``
end in layers initialised to zero, so before training the model *is* the linear code (same symbols,
same images) and training can only start from its quality. ``x_lin_r`` with the SNR is a sufficient
statistic of the received layers 1..r (the LMMSE map is invertible per coefficient), so ``R_r`` loses
nothing by reading the image instead of the symbols; it is a convolutional decoder at 1/4 resolution
(the pixels as ``4 x 4`` blocks) with the SNR of each received layer as extra maps. The semantic
head of ``D_r`` is a separate small classifier ``C_r`` on the same input. The linear paths stay
fixed at the fitted code; ``E``, the ``R_r`` and the ``C_r`` learn.

Power: with ``power="average"`` each layer is divided by the root of its mean power over the images,
estimated while training (a running average, as batch normalisation keeps its statistics) and fixed
afterwards, so the layer has power 1 per complex symbol on average over images (1 exactly at
initialisation, where the linear code's gains already meet it). Transmitter and receiver divide and
multiply by the same running value, in training too: a per-batch estimate at the transmitter would
scale every received image of a batch by an error the receiver cannot know. With ``power="per-image"`` every
layer of every image has power 1, and the last symbol of each layer is the linear code's pilot.

The decoders keep causality: ``D_r`` reads layers 1..r only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from semcom.analog.code import LinearAnalogCode, LinearCodeConfig, equivalent_awgn
from semcom.channels.base import ChannelOutput
from semcom.jscc.config import JsccConfig
from semcom.jscc.model import JsccOutput, MultiResJscc, _clip01, _ConvDecoder, _ResBlock

__all__ = ["AnchoredJscc", "anchor_config", "build_jscc"]

_SNR_SCALE_DB = 20.0
_MOMENTUM = 0.01


def anchor_config(config: JsccConfig) -> LinearCodeConfig:
    """The linear code a JSCC configuration anchors on (same image shape and layers)."""
    return LinearCodeConfig(config.image_shape, config.layer_symbols, **(config.anchor or {}))


class AnchoredJscc(MultiResJscc):
    """JSCC = linear analog code + zero-initialised nonlinear refinements (see the module docstring).

    Args:
        config: a :class:`JsccConfig` with ``arch="anchored"``; ``config.anchor`` holds the linear
            code's options (transform, allocation, design SNR, power).

    Call :meth:`anchor_on` with a fitted :class:`LinearAnalogCode` before training (a checkpoint
    restores it). Shapes as :class:`MultiResJscc`.
    """

    layer_power: torch.Tensor

    def __init__(self, config: JsccConfig) -> None:
        nn.Module.__init__(self)
        self.config = config
        c = config.image_shape[0]
        fw = config.enc_width
        self.linear = LinearAnalogCode(anchor_config(config))
        self.pilot_log_amp = None
        self.skip = None
        self.register_buffer("layer_power", torch.ones(config.num_layers))
        data = self.linear.config.data_symbols
        self.trunk = nn.Sequential()  # empty: no transmitter refinement (no parameters, no state)
        self.heads = nn.ModuleList()
        if fw > 0:  # enc_width 0: the transmitter is the linear code alone
            self.trunk = nn.Sequential(
                nn.Conv2d(c, fw // 2, 5, stride=2, padding=2),
                nn.PReLU(fw // 2),
                *(_ResBlock(fw // 2) for _ in range(config.hires_blocks)),
                nn.Conv2d(fw // 2, fw, 5, stride=2, padding=2),
                nn.PReLU(fw),
                *(_ResBlock(fw) for _ in range(config.enc_blocks)),
            )
            hw = config.latent_hw[0] * config.latent_hw[1]
            self.heads.extend(nn.Conv2d(fw, math.ceil(2 * d / hw), 3, padding=1) for d in data)
        inputs = [16 * c + (r if config.snr_info else 0) for r in range(1, config.num_layers + 1)]
        self.decoders = nn.ModuleList(
            _ConvDecoder(ch, config.dec_width, c, 0, config.latent_hw, blocks=config.dec_blocks,
                         hires_blocks=config.hires_blocks, output="identity")
            for ch in inputs
        )
        self.classifiers = nn.ModuleList(
            _Classifier(ch, config.dec_width, config.num_classes, config.latent_hw) for ch in inputs
        ) if config.num_classes > 0 else None
        self._zero_refinements()

    def _zero_refinements(self) -> None:
        last_layers = [*self.heads, *(cast(nn.Sequential, dec.up)[-2] for dec in self.decoders)]
        for layer in last_layers:
            nn.init.zeros_(cast(nn.Linear, layer).weight)
            nn.init.zeros_(cast(nn.Linear, layer).bias)

    def semantic_heads(self) -> list[nn.Module]:
        """The classifiers C_1..C_L (trained alone by ``heads_only``)."""
        return list(self.classifiers) if self.classifiers is not None else []

    def anchor_on(self, code: LinearAnalogCode) -> None:
        """Copy a fitted linear code's transform into the model (its configuration must match)."""
        if code.config != self.linear.config:
            raise ValueError(f"linear code {code.config} does not match the anchor {self.linear.config}")
        self.linear.load_state_dict(code.state_dict())

    # -- transmitter -------------------------------------------------------------------------
    def _refinement(self, images: torch.Tensor) -> torch.Tensor | float:
        if len(self.trunk) == 0:
            return 0.0
        feats = self.trunk(images)
        parts = [head(feats).flatten(1)[:, : 2 * d] for head, d in zip(self.heads, self.linear.config.data_symbols,
                                                                         strict=True)]
        return torch.cat(parts, dim=1)

    def _normalise(self, symbols: torch.Tensor) -> torch.Tensor:
        """Average-power mode: divide each layer by the root of its mean power over images."""
        if self.linear.config.power != "average":
            return symbols
        layers = torch.split(symbols, list(self.config.layer_symbols), dim=1)
        if self.training:  # track the mean power; transmitter and receiver both use the running value
            with torch.no_grad():
                power = torch.stack([(z.real.square() + z.imag.square()).mean() for z in layers])
                self.layer_power.lerp_(power, _MOMENTUM)
        return torch.cat([z * torch.rsqrt(p) for z, p in zip(layers, self.layer_power, strict=True)], dim=1)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, H, W]`` -> symbols ``[B, k_1 + .. + k_L]`` complex."""
        if images.dim() != 4 or tuple(images.shape[1:]) != self.config.image_shape:
            raise ValueError(
                f"expected images [B, {', '.join(map(str, self.config.image_shape))}], got {tuple(images.shape)}"
            )
        t = self.linear.coefficients(images) * self.linear.gains().to(images.dtype) + self._refinement(images)
        return self._normalise(self.linear.to_symbols(t))

    # -- receiver ----------------------------------------------------------------------------
    def _rescale(self, z: torch.Tensor, gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Undo the fixed average-power scale: the linear code's units (the receiver knows it)."""
        if self.linear.config.power != "average":
            return z, gamma
        r = self.linear.layers_in(z.shape[1])
        sizes = torch.as_tensor(list(self.config.layer_symbols[:r]), device=z.device)
        p = torch.repeat_interleave(self.layer_power[:r], sizes).unsqueeze(0)
        return z * p.sqrt(), gamma / p

    def decode_equivalent(
        self, z: torch.Tensor, gamma: torch.Tensor, resolutions: Sequence[int] | None = None
    ) -> list[JsccOutput]:
        """Decode ``z = x + n / h`` with per-symbol SNR ``gamma`` (``[B, k_1 + .. + k_r]``) by D_1..D_r."""
        r_max = self.linear.layers_in(z.shape[1])
        snr_layers = self.layer_snr_db(gamma, r_max) / _SNR_SCALE_DB  # [B, r]
        coef = self.linear.estimate(*self._rescale(z, gamma))
        wanted = list(range(1, r_max + 1)) if resolutions is None else list(resolutions)
        hh, ww = self.config.latent_hw
        outs = []
        for j in wanted:
            if not 1 <= j <= r_max:
                raise ValueError(f"decoder {j} needs layers 1..{j}, only {r_max} received")
            base = self.linear.reconstruct(coef[:, : self.linear.reals_upto(j)])
            feats = nn.functional.pixel_unshuffle(base - 0.5, 4)  # centred pixels
            if self.config.snr_info:
                maps = snr_layers[:, :j].reshape(-1, j, 1, 1).expand(-1, j, hh, ww)
                feats = torch.cat([feats, maps.to(feats.dtype)], dim=1)
            residual, _ = self.decoders[j - 1](feats)
            logits = self.classifiers[j - 1](feats) if self.classifiers is not None else None
            outs.append(JsccOutput(j, _clip01(base + residual), logits))
        return outs

    def decode(
        self,
        symbols: torch.Tensor,
        snr_db: torch.Tensor | float | None,
        resolutions: Sequence[int] | None = None,
    ) -> list[JsccOutput]:
        """Decode AWGN-equivalent symbols ``[B, k_1 + .. + k_r]`` at ``snr_db`` (float, ``[B]`` or ``[B, r]``)."""
        if snr_db is None:
            raise ValueError("the anchored JSCC needs the SNR at the receiver (its LMMSE stage)")
        r = self.linear.layers_in(symbols.shape[1])
        s = torch.as_tensor(snr_db, dtype=torch.float32, device=symbols.device)
        if s.dim() == 0:
            s = s.expand(symbols.shape[0])
        if s.dim() == 1:
            s = s.unsqueeze(1).expand(-1, r)
        sizes = torch.as_tensor(list(self.config.layer_symbols[:r]), device=symbols.device)
        gamma = torch.repeat_interleave(torch.pow(10.0, s / 10.0), sizes, dim=1)
        return self.decode_equivalent(symbols, gamma, resolutions)

    def receive(self, out: ChannelOutput, resolutions: Sequence[int] | None = None) -> list[JsccOutput]:
        """Decode a channel output (perfect CSI: ``z = conj(h) y / |h|^2``; none: ``h = 1``)."""
        return self.decode_equivalent(*equivalent_awgn(out), resolutions)


class _Classifier(nn.Module):
    """C_r: the decoder's input maps ``[B, in_ch, h, w]`` -> class logits ``[B, K]``.

    Separate from the reconstruction refinement R_r: with shared features the cross-entropy gradient
    can drown the weak one the refinement learns from (docs/linear.md).
    """

    def __init__(self, in_ch: int, width: int, num_classes: int, latent_hw: tuple[int, int]) -> None:
        super().__init__()
        h, w = (latent_hw[0] + 1) // 2, (latent_hw[1] + 1) // 2
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, width, 3, padding=1),
            nn.PReLU(width),
            _ResBlock(width),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.PReLU(width),
            nn.Flatten(),
            nn.Linear(width * h * w, num_classes),
        )

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.body(feats)


def build_jscc(config: JsccConfig) -> MultiResJscc:
    """The model ``config`` describes: :class:`AnchoredJscc` for ``arch="anchored"``, else :class:`MultiResJscc`."""
    return AnchoredJscc(config) if config.arch == "anchored" else MultiResJscc(config)
