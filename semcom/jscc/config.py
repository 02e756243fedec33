"""Configuration of a multi-resolution JSCC model and of its training run, and the bandwidth bookkeeping.

Bandwidth ratio ``rho = k / n``: ``k`` complex channel uses per image, ``n = H * W * C`` source
dimensions. ``k = floor(n * rho)``: CIFAR-10 (n = 3072) at rho = 1/6 gives 512 symbols, MNIST
(n = 784) at rho = 1/6 gives 130 (784 / 6 = 130.67, rounded down).

Layer split (:func:`split_symbols`): ``k`` is cut into ``L`` near-equal layers, ``floor(k / L)``
each, the remainder going one symbol each to the first (most important) layers: MNIST 130 / 3 ->
44, 43, 43. Explicit per-layer counts can be given instead (the CIFAR-10 zoo models use 192, 160,
160: whole 8x8 feature maps, see :class:`JsccConfig`).

Three pydantic records, each field written once with its description: :class:`JsccArchitecture`
(the choices that do not depend on the data), :class:`JsccConfig` (those plus the image shape, the
layer sizes and the classes: everything that rebuilds a model, stored in its checkpoint) and
:class:`TrainConfig` (a training run: it holds :class:`ArchitectureOptions` and a
:class:`~semcom.channels.spec.ChannelSpec` and reads and writes as the flat options of
``semcom train``, see :class:`~semcom.flat_config.FlatConfig`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from copy import copy
from fractions import Fraction
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from semcom.channels.spec import ChannelSpec
from semcom.errors import ModelConfigError
from semcom.flat_config import FlatConfig, describe_errors

__all__ = [
    "ArchitectureOptions",
    "JsccArchitecture",
    "JsccConfig",
    "TrainConfig",
    "parse_ratio",
    "split_symbols",
    "symbols_for_ratio",
]


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




class JsccArchitecture(BaseModel):
    """The architecture choices of a JSCC model that do not depend on the data.

    ``arch``: ``"conv"`` (convolutional, any H, W divisible by 4), ``"mlp"`` (fully connected, for
    small images such as MNIST; ``enc_width``/``dec_width`` are then the hidden sizes) or
    ``"anchored"`` (the linear analog code plus convolutional refinements that start at zero,
    :class:`~semcom.jscc.anchored.AnchoredJscc`).

    ``linear_skip`` (conv) adds a linear shortcut beside the convolutional stacks: pixels ->
    space-to-depth (4x4) -> 1x1 conv into the encoder features, and received layers -> 3x3 conv ->
    depth-to-space (4x4) into each decoder's pre-sigmoid output. The network then reaches a linear
    (transform-coding-like) code from the first steps and learns the nonlinear part on top
    (docs/jscc.md).

    ``gain_pilot`` spends the last complex symbol of each layer on a pilot that tells the receiver
    the layer's per-image power-normalisation gain. The encoder appends a constant ``c_i`` (learned)
    to the layer's ``k_i - 1`` data symbols before normalising, so the received pilot is ``s c_i``
    (plus noise), ``s`` the gain; the receiver divides the layer by ``s_hat = pilot / c_i``. Without
    it the decoder must guess ``s`` from the content, which costs a linear code several dB at high
    SNR (docs/jscc.md). Without CSI the pilot also gives the receiver the channel gain.

    ``output="clamp"`` (identity clipped to [0, 1], with the gradient of the identity) keeps the
    linear shortcut linear in the pixels.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enc_width: int = Field(default=64, description="encoder channels (conv) / hidden size (mlp)")
    dec_width: int = Field(default=64, description="decoder channels (conv) / hidden size (mlp)")
    snr_info: bool = Field(default=True, description="SNR side info to the decoders")
    arch: str = Field(default="conv",
                      description="conv, mlp, or anchored (the linear analog code plus learned refinements)")
    enc_blocks: int = Field(default=1, description="encoder residual blocks at 1/4 resolution (conv)")
    dec_blocks: int = Field(default=1, description="residual blocks per decoder at 1/4 resolution (conv)")
    hires_blocks: int = Field(default=0,
                              description="residual blocks at 1/2 resolution in encoder and each decoder (conv)")
    linear_skip: bool = Field(default=False, description="linear pixel<->symbol shortcut beside the conv stacks")
    gain_pilot: bool = Field(default=False, description="one symbol per layer tells the receiver its power gain")
    output: str = Field(default="sigmoid", description="decoder output map: sigmoid or clamp")

    @model_validator(mode="after")
    def _check_choices(self) -> Self:
        if self.arch not in ("conv", "mlp", "anchored"):
            raise ModelConfigError(f"arch must be 'conv', 'mlp' or 'anchored', not {self.arch!r}")
        if self.arch == "anchored" and self.linear_skip:
            raise ModelConfigError("arch 'anchored' has its linear paths already: linear_skip does not apply")
        if self.arch == "anchored" and self.gain_pilot:
            raise ModelConfigError("arch 'anchored' sends its pilots through anchor power 'per-image', "
                                   "not gain_pilot")
        if self.output not in ("sigmoid", "clamp"):
            raise ModelConfigError(f"output must be 'sigmoid' or 'clamp', not {self.output!r}")
        if min(self.enc_blocks, self.dec_blocks, self.hires_blocks) < 0:
            raise ModelConfigError("enc_blocks, dec_blocks and hires_blocks must be >= 0")
        return self


class JsccConfig(JsccArchitecture):
    """Everything needed to rebuild a :class:`~semcom.jscc.model.MultiResJscc` (stored in checkpoints).

    ``JsccConfig(image_shape, layer_symbols, **options)``; invalid settings raise
    :class:`~semcom.errors.ModelConfigError` (a ``ValueError``).

    Conv: layer ``i`` is carried by ``c_i = ceil(2 k_i / (H/4 * W/4))`` encoder feature maps at 1/4 of the
    image resolution; the first ``2 k_i`` reals of those maps (row-major) are paired into ``k_i``
    complex symbols. Reals beyond ``2 k_i`` are never sent; the decoder puts zeros in their place.
    MLP: layer ``i``'s head emits exactly ``2 k_i`` reals.

    Stored form (:meth:`to_dict`): the fields in the order below, then ``"extra": {}``, an empty entry
    that files have always carried (it was a free-form field that nothing read), kept so that every
    checkpoint's metadata reads and writes back byte for byte.
    """

    image_shape: tuple[int, int, int] = Field(description="(C, H, W) of the source images (H, W divisible "
                                                          "by 4 for conv and anchored)")
    layer_symbols: tuple[int, ...] = Field(description="complex symbols per layer, k_1..k_L")
    num_classes: int = Field(default=10, description="classes of the semantic head (0: no semantic head)")
    name: str = Field(default="mr-jscc", description="free-form architecture name for cards (mr-jscc, deep-jscc)")
    anchor: dict[str, Any] | None = Field(default=None, description="arch anchored only: the linear code's options, "
                                          "keys of semcom.analog.code.LinearCodeConfig (transform, allocation, "
                                          "design_snr_db, power); None takes its defaults")

    _STORED_ORDER: ClassVar[tuple[str, ...]] = (
        "image_shape", "layer_symbols", "num_classes", "enc_width", "dec_width", "snr_info", "arch", "name",
        "enc_blocks", "dec_blocks", "hires_blocks", "linear_skip", "gain_pilot", "output", "anchor",
    )

    def __init__(self, image_shape: Sequence[int] | None = None, layer_symbols: Sequence[int] | None = None, /,
                 **data: Any) -> None:
        if image_shape is not None:
            data["image_shape"] = image_shape
        if layer_symbols is not None:
            data["layer_symbols"] = layer_symbols
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ModelConfigError(describe_errors(exc)) from None

    @model_validator(mode="after")
    def _check_shapes(self) -> Self:
        _, h, w = self.image_shape
        if self.arch in ("conv", "anchored") and (h % 4 or w % 4):
            raise ModelConfigError(f"image height and width must be divisible by 4, got {h}x{w}")
        if self.anchor is not None and self.arch != "anchored":
            raise ModelConfigError("anchor options apply to arch 'anchored' only")
        if not self.layer_symbols or any(k < 1 for k in self.layer_symbols):
            raise ModelConfigError(f"layer_symbols must be positive counts, got {self.layer_symbols}")
        if self.gain_pilot and min(self.layer_symbols) < 2:
            raise ModelConfigError("gain_pilot needs at least 2 symbols per layer (one is the pilot)")
        return self

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
        """The stored form (see the class docstring); tuples stay tuples."""
        fields = self.model_dump()
        return {**{k: fields[k] for k in self._STORED_ORDER}, "extra": {}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JsccConfig:
        """Read the stored form; records from before a field existed take its default."""
        unknown = set(data) - set(cls.model_fields) - {"extra"}
        if unknown:
            raise ValueError(f"unknown JSCC config fields: {sorted(unknown)}")
        return cls(**{k: v for k, v in data.items() if k != "extra"})


def _default(name: str, default: Any) -> Any:
    """``JsccArchitecture``'s field ``name`` (its description) with another default."""
    info = copy(JsccArchitecture.model_fields[name])
    info.default = default
    return info


class ArchitectureOptions(JsccArchitecture):
    """The architecture a training run asks for; the data supplies the rest (:meth:`config_for`).

    ``layers`` layers split ``floor(H W C rho)`` symbols (:func:`split_symbols`) unless
    ``layer_symbols`` is given. The ``anchor_*`` options apply to ``arch="anchored"`` only.
    """

    enc_width: int = _default("enc_width", 32)
    dec_width: int = _default("dec_width", 32)
    layers: int = Field(default=3, ge=1, description="number of layers L (1 = single-layer deep JSCC)")
    rho: str = Field(default="1/6", description="total bandwidth ratio k/n, e.g. 1/6")
    layer_symbols: list[int] | None = Field(default=None, description="explicit symbols per layer, e.g. 192,160,160")
    anchor_transform: str = Field(default="klt", description="anchored: linear code transform, klt or dct")
    anchor_allocation: str = Field(default="mmse", description="anchored: power allocation, mmse or softcast")
    anchor_design_snr: float | None = Field(default=10.0, description="anchored: SNR in dB the allocation is made for")
    anchor_power: str = Field(default="average", description="anchored: power normalisation, average (over images) "
                                                     "or per-image (pilot)")

    @field_validator("rho", mode="before")
    @classmethod
    def _ratio_text(cls, value: Any) -> Any:
        """A ratio given as a number (YAML ``rho: 0.25``) is kept as its text."""
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    def layer_sizes(self, image_shape: Sequence[int]) -> tuple[int, ...]:
        """Symbols per layer for images of ``image_shape``: ``layer_symbols``, else the ``rho`` split."""
        if self.layer_symbols:
            return tuple(self.layer_symbols)
        return split_symbols(symbols_for_ratio(image_shape, self.rho), self.layers)

    def config_for(self, image_shape: Sequence[int], num_classes: int) -> JsccConfig:
        """The model these options describe for images of ``image_shape`` ``(C, H, W)``."""
        sizes = self.layer_sizes(image_shape)
        name = "deep-jscc" if len(sizes) == 1 else "mr-jscc"
        anchored = self.arch == "anchored"
        anchor = {
            "transform": self.anchor_transform,
            "allocation": self.anchor_allocation,
            "design_snr_db": self.anchor_design_snr,
            "power": self.anchor_power,
        }
        shared = self.model_dump(include=set(JsccArchitecture.model_fields))
        return JsccConfig(tuple(image_shape), sizes, num_classes=num_classes,
                          name=f"anchored-{name}" if anchored else name, anchor=anchor if anchored else None,
                          **shared)


class TrainConfig(FlatConfig):
    """Everything a training run needs: the ``semcom train`` options and YAML keys (same flat names).

    Holds the architecture (:class:`ArchitectureOptions`) and the training channel
    (:class:`~semcom.channels.spec.ChannelSpec`, options ``channel``, ``block``, ``csi``,
    ``k_factor``) as records; constructed and stored flat (``TrainConfig(enc_width=8)``,
    :meth:`to_flat`). ``init`` fine-tunes from a checkpoint (its architecture wins over the
    architecture options); ``arch="anchored"`` fits the linear analog code on the training images
    first and starts from it.

    Data: ``validation`` images drawn from the training split (seed ``validation_seed``) are held out;
    they pick the best checkpoint (the first ``eval_count`` of them are scored after each epoch). The
    test split is only scored at the end (``final_eval_count`` images, all by default).

    ``device``: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available); model, data and channel
    live there.
    """

    flat_names: ClassVar[dict[str, dict[str, str]]] = {"architecture": {}, "channel": {"type": "channel"}}

    dataset: str = Field(default="mnist", description="mnist, fashion-mnist or cifar10")
    data_root: str | None = Field(default=None, description="data root holding the official dataset files")
    split: str = Field(default="train", description="split of the dataset to train on")
    exclude_mnist_sample: bool = Field(default=False,
                                       description="leave out the 5,000 offline-sample images (MNIST train)")
    train_count: int | None = Field(default=None, description="use only the first N training images")
    data_note: str | None = Field(default=None, description="a sentence for the card about the data (e.g. which copy)")
    validation: int = Field(default=2000, description="training images held out as the validation split (picks the "
                                              "best checkpoint)")
    validation_seed: int = Field(default=0, description="seed of the validation draw")
    architecture: ArchitectureOptions = Field(default_factory=ArchitectureOptions,
                                              description="the model to build (flat: its own field names)")
    channel: ChannelSpec = Field(default_factory=lambda: ChannelSpec.model_validate({}),
                                 description="the training channel (flat: channel, block, csi, k_factor)")
    snr_min: float = Field(default=0.0, description="training SNR range, lower end in dB")
    snr_max: float = Field(default=20.0, description="training SNR range, upper end in dB (= min: fixed)")
    mode: Literal["joint", "successive"] = Field(default="joint", description="joint or successive")
    loss: Literal["mse", "psnr"] = Field(default="mse", description="mse, or psnr (every image weighted equally in dB)")
    freeze_encoder: bool = Field(default=False, description="train the decoders only (the transmitted symbols stay "
                                                    "bit-identical; use with --init)")
    heads_only: bool = Field(default=False, description="train only the decoders' semantic heads (images and symbols "
                                                "unchanged; use with --init)")
    epochs: int = Field(default=5, ge=1, description="epochs (per layer in successive mode)")
    batch_size: int = Field(default=64, ge=1, description="batch size")
    lr: float = Field(default=1e-3, description="Adam learning rate (cosine decay)")
    lr_min_factor: float = Field(default=0.05, description="the cosine decay ends at lr times this factor")
    warmup_steps: int = Field(default=100, description="linear learning-rate warm-up steps")
    layer_weights: list[float] | None = Field(default=None, description="MSE weight per layer, e.g. 1,1,1")
    ce_weight: float = Field(default=0.01, description="cross-entropy weight of the semantic heads")
    augment_flip: bool = Field(default=False, description="random horizontal flips")
    seed: int = Field(default=0, description="seed of data order, SNR draws and channel")
    threads: int = Field(default=2, description="torch CPU threads")
    out: str = Field(default="runs/jscc", description="run directory for checkpoints")
    resume: bool = Field(default=True, description="continue from OUT/latest.* if present")
    init: str | None = Field(default=None, description="fine-tune from this checkpoint (.safetensors)")
    eval_count: int = Field(default=1000, description="validation images scored after each epoch")
    eval_snrs: list[float] = Field(default_factory=lambda: [0.0, 5.0, 10.0, 15.0, 20.0],
                                   description="evaluation SNRs in dB")
    final_eval_count: int | None = Field(default=None, description="test images for the final card (default: all)")
    device: str = Field(default="cpu", description="cpu, cuda or auto")
    max_minutes: float | None = Field(default=None, description="stop (resumably) before exceeding this wall time")
    zoo_name: str | None = Field(default=None, description="also write each new best into the zoo under this name")
    zoo_dir: str | None = Field(default=None, description="zoo directory (default: the package's zoo/weights)")
    progress: bool = Field(default=True, description="progress bar")

    @model_validator(mode="after")
    def _check_run(self) -> Self:
        if self.heads_only and self.ce_weight <= 0:
            raise ValueError("heads_only trains on the cross-entropy terms: ce_weight must be > 0")
        if self.heads_only and self.mode != "joint":
            raise ValueError("heads_only trains the semantic heads of all decoders at once: use mode 'joint'")
        if self.snr_min > self.snr_max:
            raise ValueError(f"snr_min {self.snr_min} > snr_max {self.snr_max}")
        sizes = self.architecture.layer_symbols
        if self.layer_weights is not None and sizes is not None and len(self.layer_weights) != len(sizes):
            raise ValueError("layer_weights needs one weight per layer")
        return self
