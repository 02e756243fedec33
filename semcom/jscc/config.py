"""Architecture configuration of a multi-resolution JSCC model and the bandwidth bookkeeping.

Bandwidth ratio ``rho = k / n``: ``k`` complex channel uses per image, ``n = H * W * C`` source
dimensions. ``k = floor(n * rho)``: CIFAR-10 (n = 3072) at rho = 1/6 gives 512 symbols, MNIST
(n = 784) at rho = 1/6 gives 130 (784 / 6 = 130.67, rounded down).

Layer split (:func:`split_symbols`): ``k`` is cut into ``L`` near-equal layers, ``floor(k / L)``
each, the remainder going one symbol each to the first (most important) layers: MNIST 130 / 3 ->
44, 43, 43. Explicit per-layer counts can be given instead (the CIFAR-10 zoo models use 192, 160,
160: whole 8x8 feature maps, see :class:`JsccConfig`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

from semcom.errors import ModelConfigError

__all__ = ["JsccConfig", "parse_ratio", "split_symbols", "symbols_for_ratio"]


def parse_ratio(value: str | float | Fraction) -> Fraction:
    """A bandwidth ratio from ``"1/6"``, ``0.1667`` or a ``Fraction`` (kept exact when given as p/q)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, str):
        return Fraction(value.strip())
    return Fraction(value).limit_denominator(1000)


def symbols_for_ratio(image_shape: Sequence[int], rho: str | float | Fraction) -> int:
    """Complex channel uses ``k = floor(H W C * rho)`` for an image of shape ``(C, H, W)``."""
    n = math.prod(int(s) for s in image_shape)
    k = math.floor(n * parse_ratio(rho))
    if k < 1:
        raise ModelConfigError(f"bandwidth ratio {rho} leaves no channel use for {n} source dimensions")
    return int(k)


def split_symbols(total: int, num_layers: int) -> tuple[int, ...]:
    """Split ``total`` symbols into ``num_layers`` near-equal layers, remainder to the first layers."""
    if num_layers < 1 or total < num_layers:
        raise ModelConfigError(f"cannot split {total} symbols into {num_layers} layers")
    base, rem = divmod(total, num_layers)
    return tuple(base + (1 if i < rem else 0) for i in range(num_layers))


@dataclass(frozen=True)
class JsccConfig:
    """Everything needed to rebuild a :class:`~semcom.jscc.model.MultiResJscc` (stored in checkpoints).

    Attributes:
        image_shape: ``(C, H, W)`` of the source images (H, W divisible by 4 for ``arch="conv"``).
        layer_symbols: complex symbols per layer, ``k_1..k_L``.
        num_classes: classes of the semantic head (0: no semantic head).
        enc_width: channels of the shared encoder trunk.
        dec_width: channels of each decoder.
        snr_info: feed each layer's effective SNR (dB) to the decoders as an extra feature map, so one
            model serves all SNRs (SNR-adaptive decoding).
        arch: ``"conv"`` (convolutional, any H, W divisible by 4), ``"mlp"`` (fully connected, for
            small images such as MNIST; ``enc_width``/``dec_width`` are then the hidden sizes) or
            ``"anchored"`` (the linear analog code plus convolutional refinements that start at zero,
            :class:`~semcom.jscc.anchored.AnchoredJscc`).
        name: free-form architecture name for cards (``"mr-jscc"``, ``"deep-jscc"``).
        enc_blocks: residual blocks of the encoder trunk at 1/4 resolution (conv).
        dec_blocks: residual blocks of each decoder at 1/4 resolution (conv).
        hires_blocks: residual blocks at 1/2 resolution, in the encoder trunk and in each decoder
            (conv). Detail is rebuilt there, so this buys PSNR at high SNR for little compute.
        linear_skip: add a linear shortcut beside the convolutional stacks (conv): pixels
            -> space-to-depth (4x4) -> 1x1 conv into the encoder features, and received layers ->
            3x3 conv -> depth-to-space (4x4) into each decoder's pre-sigmoid output. The network then
            can reach a linear (transform-coding-like) code from the first steps and learns the
            nonlinear part on top: about 1.4 dB more at 10 dB after 10 minutes of CPU training
            (docs/jscc.md).
        gain_pilot: spend the last complex symbol of each layer on a pilot that tells the receiver
            the layer's per-image power-normalisation gain. The encoder appends a constant ``c_i``
            (learned) to the layer's ``k_i - 1`` data symbols before normalising, so the received
            pilot is ``s c_i`` (plus noise), ``s`` the gain; the receiver divides the layer by
            ``s_hat = pilot / c_i``. Without it the decoder must guess ``s`` from the content: a
            linear code loses 2.6 dB at 10 dB and 6.6 dB at 20 dB to a blind gain on CIFAR-10
            (docs/jscc.md). Without CSI the pilot also gives the receiver the channel gain.
        anchor: arch ``"anchored"`` only: the linear code's options, keys of
            :class:`~semcom.analog.code.LinearCodeConfig` (``transform``, ``allocation``,
            ``design_snr_db``, ``power``); None takes its defaults.
        output: decoder output map, ``"sigmoid"`` or ``"clamp"`` (identity clipped to [0, 1], with the
            gradient of the identity), which keeps the linear shortcut linear in the pixels.

    Conv: layer ``i`` is carried by ``c_i = ceil(2 k_i / (H/4 * W/4))`` encoder feature maps at 1/4 of the
    image resolution; the first ``2 k_i`` reals of those maps (row-major) are paired into ``k_i``
    complex symbols. Reals beyond ``2 k_i`` are never sent; the decoder puts zeros in their place.
    MLP: layer ``i``'s head emits exactly ``2 k_i`` reals.
    """

    image_shape: tuple[int, int, int]
    layer_symbols: tuple[int, ...]
    num_classes: int = 10
    enc_width: int = 64
    dec_width: int = 64
    snr_info: bool = True
    arch: str = "conv"
    name: str = "mr-jscc"
    enc_blocks: int = 1
    dec_blocks: int = 1
    hires_blocks: int = 0
    linear_skip: bool = False
    gain_pilot: bool = False
    output: str = "sigmoid"
    anchor: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _, h, w = self.image_shape
        if self.arch == "conv" and (h % 4 or w % 4):
            raise ModelConfigError(f"image height and width must be divisible by 4, got {h}x{w}")
        if self.arch not in ("conv", "mlp", "anchored"):
            raise ModelConfigError(f"arch must be 'conv', 'mlp' or 'anchored', not {self.arch!r}")
        if self.arch == "anchored" and (h % 4 or w % 4):
            raise ModelConfigError(f"image height and width must be divisible by 4, got {h}x{w}")
        if self.anchor is not None and self.arch != "anchored":
            raise ModelConfigError("anchor options apply to arch 'anchored' only")
        if self.arch == "anchored" and self.linear_skip:
            raise ModelConfigError("arch 'anchored' has its linear paths already: linear_skip does not apply")
        if self.arch == "anchored" and self.gain_pilot:
            raise ModelConfigError("arch 'anchored' sends its pilots through anchor power 'per-image', "
                                   "not gain_pilot")
        if not self.layer_symbols or any(k < 1 for k in self.layer_symbols):
            raise ModelConfigError(f"layer_symbols must be positive counts, got {self.layer_symbols}")
        if self.gain_pilot and min(self.layer_symbols) < 2:
            raise ModelConfigError("gain_pilot needs at least 2 symbols per layer (one is the pilot)")
        if self.output not in ("sigmoid", "clamp"):
            raise ModelConfigError(f"output must be 'sigmoid' or 'clamp', not {self.output!r}")
        if min(self.enc_blocks, self.dec_blocks, self.hires_blocks) < 0:
            raise ModelConfigError("enc_blocks, dec_blocks and hires_blocks must be >= 0")
        object.__setattr__(self, "image_shape", tuple(int(v) for v in self.image_shape))
        object.__setattr__(self, "layer_symbols", tuple(int(v) for v in self.layer_symbols))

    @property
    def num_layers(self) -> int:
        return len(self.layer_symbols)

    @property
    def latent_hw(self) -> tuple[int, int]:
        """Spatial size of the latent feature maps, ``(H/4, W/4)``."""
        return self.image_shape[1] // 4, self.image_shape[2] // 4

    @property
    def layer_channels(self) -> tuple[int, ...]:
        """Feature maps per layer: ``ceil(2 k_i / (H/4 W/4))``."""
        hw = self.latent_hw[0] * self.latent_hw[1]
        return tuple(math.ceil(2 * k / hw) for k in self.layer_symbols)

    @property
    def total_symbols(self) -> int:
        return sum(self.layer_symbols)

    @property
    def source_dims(self) -> int:
        return math.prod(self.image_shape)

    def bandwidth_ratios(self) -> list[float]:
        """Cumulative bandwidth ratio ``(k_1 + .. + k_r) / n`` for r = 1..L."""
        out, acc = [], 0
        for k in self.layer_symbols:
            acc += k
            out.append(acc / self.source_dims)
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JsccConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown JSCC config fields: {sorted(unknown)}")
        d = dict(data)
        d["image_shape"] = tuple(d["image_shape"])
        d["layer_symbols"] = tuple(d["layer_symbols"])
        return cls(**d)
