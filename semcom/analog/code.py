"""The linear analog code: transform, power allocation, LMMSE decoding, in L layers.

Transmitter: an image ``x`` (``n`` values in [0, 1]) becomes coefficients ``c = U^T (x - mean)``
(:mod:`semcom.analog.transform`); layer ``i`` carries the next ``2 d_i`` of them, strongest first,
as ``d_i`` complex symbols (reals paired in order), each real scaled by its gain ``g_j``:
``t_j = g_j c_j``. Gains follow the allocation (:mod:`semcom.analog.allocation`) inside each layer,
with the layer's budget ``d_i`` (power 1 per complex symbol, 1/2 per real).

Power normalisation:

- ``"average"``: the gains meet the budget on average over the images the code was fitted on (the
  power constraint of SoftCast and of the analog-coding literature); no symbol is spent on side
  information, ``d_i = k_i``.
- ``"per-image"``: every layer of every image is scaled to power exactly 1 per complex symbol,
  ``x_i <- s x_i``, as semcom's JSCC layers are. The receiver needs ``s``: the last symbol of each
  layer is a pilot, the constant ``a_i`` before scaling, so it arrives as ``s a_i`` plus noise and
  ``s_hat = Re(z_pilot) / a_i``; ``d_i = k_i - 1``.

Receiver (knows the transform, the gains, the SNR and, with ``csi="perfect"``, the channel): from
``y = h x + n`` it forms ``z = conj(h) y / |h|^2 = x + n / h``, noise ``1 / (2 gamma)`` per real with
``gamma = |h|^2 / N0`` (without CSI it takes ``h = 1``), and estimates each coefficient by LMMSE,

    c_hat_j = g_j lam_j z_j / (g_j^2 lam_j + 1 / (2 gamma_j)),

then ``x_hat = mean + U_{:, 1..m_r} c_hat`` from the coefficients of layers 1..r. Coefficients are
independent (KLT exactly, DCT nearly), so each layer prefix decodes alone: the code is multi-resolution
by construction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn

from semcom.analog.allocation import mmse_allocation, softcast_allocation
from semcom.channels.base import ChannelOutput
from semcom.errors import ModelConfigError

__all__ = ["LinearAnalogCode", "LinearCodeConfig", "equivalent_awgn"]

ALLOCATIONS = ("mmse", "softcast")
POWER_MODES = ("average", "per-image")
#: pilot amplitude a_i = PILOT_FRACTION^(1/2) sqrt(d_i): about 2% of a layer's power before scaling
PILOT_FRACTION = 0.02


@dataclass(frozen=True)
class LinearCodeConfig:
    """What defines a linear analog code (stored in its checkpoint).

    Attributes:
        image_shape: ``(C, H, W)``.
        layer_symbols: complex channel uses per layer ``k_1..k_L``.
        transform: ``"klt"`` or ``"dct"``.
        allocation: ``"mmse"`` (MSE-optimal for the LMMSE receiver at ``design_snr_db``) or
            ``"softcast"`` (``g ∝ lam^-1/4``, SNR-free).
        design_snr_db: the SNR the MMSE allocation is designed for; ``None``: each receiver's own SNR
            (the transmitter knows it: a unicast, or a broadcast designed for one user).
        power: ``"average"`` or ``"per-image"`` (see the module docstring).
    """

    image_shape: tuple[int, int, int]
    layer_symbols: tuple[int, ...]
    transform: str = "klt"
    allocation: str = "mmse"
    design_snr_db: float | None = 10.0
    power: str = "average"

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_shape", tuple(int(v) for v in self.image_shape))
        object.__setattr__(self, "layer_symbols", tuple(int(v) for v in self.layer_symbols))
        if self.allocation not in ALLOCATIONS:
            raise ModelConfigError(f"allocation must be one of {ALLOCATIONS}, not {self.allocation!r}")
        if self.power not in POWER_MODES:
            raise ModelConfigError(f"power must be one of {POWER_MODES}, not {self.power!r}")
        if self.transform not in ("klt", "dct"):
            raise ModelConfigError(f"transform must be 'klt' or 'dct', not {self.transform!r}")
        low = 2 if self.power == "per-image" else 1
        if not self.layer_symbols or min(self.layer_symbols) < low:
            raise ModelConfigError(f"every layer needs at least {low} symbol(s), got {self.layer_symbols}")
        if 2 * sum(self.data_symbols) > math.prod(self.image_shape):
            raise ModelConfigError(f"{sum(self.data_symbols)} complex symbols carry more reals than the "
                                   f"{math.prod(self.image_shape)} pixels of an image")
        if self.design_snr_db is not None and not math.isfinite(self.design_snr_db):
            raise ModelConfigError(f"design_snr_db must be finite, got {self.design_snr_db}")

    @property
    def data_symbols(self) -> tuple[int, ...]:
        """Symbols per layer that carry coefficients (one less per layer with a pilot)."""
        pilot = 1 if self.power == "per-image" else 0
        return tuple(k - pilot for k in self.layer_symbols)

    @property
    def reals(self) -> int:
        """Coefficients sent in all: ``2 * sum(d_i)``."""
        return 2 * sum(self.data_symbols)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinearCodeConfig:
        return cls(**data)


def equivalent_awgn(out: ChannelOutput) -> tuple[torch.Tensor, torch.Tensor]:
    """``z = conj(h) y / |h|^2`` ``[B, n]`` and ``gamma = |h|^2 / N0`` ``[B, n]`` (``h = 1`` without CSI).

    ``z = x + n / h`` is ``x`` in complex Gaussian noise of variance ``1 / gamma``.
    """
    z, noise = out.receiver_view()  # equalised y with N0 / |h|^2, or y with N0 without CSI
    return z, 1.0 / noise


class LinearAnalogCode(nn.Module):
    """Linear analog code (see the module docstring) with its fitted transform as buffers.

    Buffers: ``mean [n]``, ``basis [n, m]``, ``lam [m]`` (``m = 2 sum d_i``), zero until
    :meth:`set_transform` or a checkpoint fills them.

    Shapes: images ``[B, C, H, W]`` in [0, 1]; symbols ``[B, k_1 + .. + k_L]`` complex64.
    """

    mean: torch.Tensor
    basis: torch.Tensor
    lam: torch.Tensor

    def __init__(self, config: LinearCodeConfig) -> None:
        super().__init__()
        self.config = config
        n, m = math.prod(config.image_shape), config.reals
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("basis", torch.zeros(n, m))
        self.register_buffer("lam", torch.ones(m))

    @property
    def num_layers(self) -> int:
        return len(self.config.layer_symbols)

    @property
    def layer_symbols(self) -> tuple[int, ...]:
        return self.config.layer_symbols

    def with_options(self, **changes: Any) -> LinearAnalogCode:
        """The same transform with other options (``allocation``, ``design_snr_db``, ``power``).

        The transform needs no refit: switching to per-image power (a pilot per layer) sends the
        strongest coefficients that still fit, as a code fitted for it would; switching back needs
        coefficients this code never kept.
        """
        config = replace(self.config, **changes)
        if config == self.config:
            return self
        new = LinearAnalogCode(config)
        if config.reals > self.config.reals:
            raise ModelConfigError(f"this code keeps {self.config.reals} coefficients; {config.power} power needs "
                                   f"{config.reals}: fit it again with power '{config.power}'")
        new.set_transform(self.mean, self.basis, self.lam)  # the strongest coefficients, as a refit would keep
        return new.to(self.mean.device)

    def set_transform(self, mean: torch.Tensor, basis: torch.Tensor, lam: torch.Tensor) -> None:
        """Install a fitted transform (``basis`` with at least ``m`` columns; the first ``m`` are kept)."""
        m = self.config.reals
        if basis.shape[1] < m or basis.shape[0] != self.basis.shape[0]:
            raise ModelConfigError(f"transform basis {tuple(basis.shape)} does not give {m} coefficients "
                                   f"of {self.basis.shape[0]} pixels")
        self.mean.copy_(mean.float())
        self.basis.copy_(basis[:, :m].float())
        self.lam.copy_(lam[:m].float().clamp_min(1e-12))

    # -- gains ------------------------------------------------------------------------------
    def _layer_slices(self) -> list[slice]:
        out, start = [], 0
        for d in self.config.data_symbols:
            out.append(slice(start, start + 2 * d))
            start += 2 * d
        return out

    def gains(self, snr_db: float | torch.Tensor | None = None) -> torch.Tensor:
        """Per-real gains ``g [m]`` (or ``[B, m]`` for an SNR per row) of the configured allocation.

        ``snr_db`` is used only when the design SNR is the receiver's (``design_snr_db=None``).
        """
        cfg = self.config
        design = cfg.design_snr_db if cfg.design_snr_db is not None else snr_db
        if cfg.allocation == "mmse" and design is None:
            raise ValueError("this code adapts its allocation to the receiver's SNR: give snr_db")
        parts = []
        for sl, d in zip(self._layer_slices(), cfg.data_symbols, strict=True):
            lam = self.lam[sl]
            if cfg.allocation == "softcast":
                p = softcast_allocation(lam, float(d))
            else:
                s2 = 0.5 * torch.pow(10.0, -torch.as_tensor(design, dtype=torch.float64) / 10.0)
                p = mmse_allocation(lam, s2, float(d))
            parts.append((p / lam).sqrt())
        return torch.cat(parts, dim=-1)

    # -- transmitter ------------------------------------------------------------------------
    def coefficients(self, images: torch.Tensor) -> torch.Tensor:
        """``c = U^T (x - mean)``, ``[B, m]``."""
        return (images.flatten(1) - self.mean) @ self.basis

    def to_symbols(self, reals: torch.Tensor) -> torch.Tensor:
        """Scaled coefficients ``[B, m]`` -> channel symbols ``[B, k]``: pairs of reals, pilots, power.

        The same packing serves a learned refinement of the reals (the anchored JSCC).
        """
        layers = []
        for sl in self._layer_slices():
            z = torch.view_as_complex(reals[:, sl].reshape(reals.shape[0], -1, 2).contiguous())
            if self.config.power == "per-image":
                d = z.shape[1]
                pilot = torch.full((z.shape[0], 1), math.sqrt(PILOT_FRACTION * d), dtype=z.dtype, device=z.device)
                z = torch.cat([z, pilot], dim=1)
                power = z.real.square() + z.imag.square()
                z = z * torch.rsqrt(power.mean(dim=1, keepdim=True).clamp_min(1e-12))
            layers.append(z)
        return torch.cat(layers, dim=1)

    def encode(self, images: torch.Tensor, snr_db: float | torch.Tensor | None = None) -> torch.Tensor:
        """Images ``[B, C, H, W]`` -> symbols ``[B, k_1 + .. + k_L]`` complex64."""
        if images.dim() != 4 or tuple(images.shape[1:]) != self.config.image_shape:
            raise ValueError(f"expected images [B, {', '.join(map(str, self.config.image_shape))}], "
                             f"got {tuple(images.shape)}")
        g = self.gains(snr_db).to(images.dtype)
        return self.to_symbols(self.coefficients(images) * g)

    # -- receiver ---------------------------------------------------------------------------
    def layers_in(self, width: int) -> int:
        """How many whole layers ``width`` received symbols are."""
        acc = 0
        for r, k in enumerate(self.config.layer_symbols, start=1):
            acc += k
            if acc == width:
                return r
        raise ValueError(f"{width} symbols is not a whole number of layers {self.config.layer_symbols}")

    def observations(self, z: torch.Tensor, gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Received layers ``z``, ``gamma`` ``[B, k_1 + .. + k_r]`` -> data reals ``[B, m_r]`` and their
        noise variance per real ``[B, m_r]``, pilots removed and the per-image scale undone."""
        r = self.layers_in(z.shape[1])
        obs, var, start = [], [], 0
        for k, d in zip(self.config.layer_symbols[:r], self.config.data_symbols[:r], strict=True):
            zl, gl = z[:, start : start + k], gamma[:, start : start + k]
            start += k
            noise = 0.5 / gl[:, :d].clamp_min(1e-12)
            data = zl[:, :d]
            if self.config.power == "per-image":
                amp = math.sqrt(PILOT_FRACTION * d)
                typical = math.sqrt(k / (d + PILOT_FRACTION * d))  # s for an image of average power
                s_hat = (zl[:, d:].real / amp).clamp_min(0.05 * typical)
                data = data / s_hat
                noise = noise / s_hat.square()
            obs.append(torch.view_as_real(data.contiguous()).reshape(z.shape[0], 2 * d))
            var.append(noise.repeat_interleave(2, dim=1))
        return torch.cat(obs, dim=1), torch.cat(var, dim=1)

    def estimate(
        self, z: torch.Tensor, gamma: torch.Tensor, snr_db: float | torch.Tensor | None = None
    ) -> torch.Tensor:
        """LMMSE coefficient estimates ``c_hat [B, m_r]`` from layers 1..r (``snr_db``: see :meth:`gains`)."""
        t, var = self.observations(z, gamma)
        m = t.shape[1]
        g = self.gains(snr_db).to(t.dtype)[..., :m]
        lam = self.lam[:m]
        return g * lam * t / (g.square() * lam + var)

    def reconstruct(self, coef: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, H, W]`` (not clamped) from the first ``m_r`` coefficients ``[B, m_r]``."""
        m = coef.shape[1]
        x = self.mean + coef @ self.basis[:, :m].T
        return x.reshape(-1, *self.config.image_shape)

    def reals_upto(self, resolution: int) -> int:
        """Coefficients carried by layers 1..resolution."""
        return 2 * sum(self.config.data_symbols[:resolution])

    def decode(
        self,
        z: torch.Tensor,
        gamma: torch.Tensor,
        resolutions: Sequence[int] | None = None,
        snr_db: float | torch.Tensor | None = None,
    ) -> list[tuple[int, torch.Tensor]]:
        """``(r, images)`` for each requested r (default all received), each from layers 1..r only."""
        c_hat = self.estimate(z, gamma, snr_db)
        r_max = self.layers_in(z.shape[1])
        wanted = range(1, r_max + 1) if resolutions is None else resolutions
        return [(r, self.reconstruct(c_hat[:, : self.reals_upto(r)])) for r in wanted]

    def receive(
        self, out: ChannelOutput, resolutions: Sequence[int] | None = None, snr_db: float | torch.Tensor | None = None
    ) -> list[tuple[int, torch.Tensor]]:
        """Decode a channel output (see :func:`equivalent_awgn`)."""
        z, gamma = equivalent_awgn(out)
        return self.decode(z, gamma, resolutions, snr_db)

    def forward(
        self, images: torch.Tensor, channel: Any, snr_db: float | torch.Tensor
    ) -> list[tuple[int, torch.Tensor]]:
        """Encode, send through ``channel`` at ``snr_db``, decode every layer prefix."""
        x = self.encode(images, snr_db)
        return self.receive(channel(x, snr_db, layer_sizes=list(self.layer_symbols)), snr_db=snr_db)
