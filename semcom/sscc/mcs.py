"""Modulation and coding schemes (MCS) of the SSCC baseline, their cached BLER curves and MCS selection.

An :class:`Mcs` is a QAM order and a 5G LDPC code rate, named like ``"4QAM-1/2"``. ``MCS_TABLE``
holds the schemes of the deep-JSCC literature (4QAM 1/3, 1/2, 2/3; 16QAM 1/2, 2/3; 64QAM 1/2, 2/3,
3/4) plus 256QAM 3/4.

BLER curves are semcom's own Monte Carlo runs of :class:`~semcom.sscc.link.LdpcQamLink` (5G LDPC,
TS 38.212, with the TB CRC of TS 38.214; QAM; APP demapper), one curve per (channel, number of
symbols per block, MCS), made by :mod:`semcom.sscc.bler`. They are cached as JSON in
``semcom/sscc/bler_tables/``, one file per (channel, block length); each file records the command
that made it. Regenerate or extend them with::

    semcom bler --num-symbols 43,130,512,170,171,44 --channel awgn --jobs 2

(the settings of the shipped AWGN tables: MNIST at rho = 1/6 sends 130 symbols per image, in three
layers of 43/43/44; CIFAR-10 sends 512, in layers of 170/171/171; the 160- and 192-symbol tables
come from ``--num-symbols 192,160``).

:func:`select_mcs` reads those tables: the scheme that carries the most information bits whose BLER,
interpolated at the operating SNR, is below the target. Operating points outside a table's SNR range
are extrapolated conservatively (BLER = 1 below the first point, the last measured value above the
last point). A point with no error is stored with its zero count and read as ``0.5 / blocks`` when
interpolating in log(BLER).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from semcom.errors import SemcomError

__all__ = [
    "BLER_TABLE_DIR",
    "MCS_TABLE",
    "BlerCurve",
    "BlerTable",
    "BlerTableMissing",
    "Mcs",
    "bler_at",
    "bler_table_path",
    "get_mcs",
    "load_bler_table",
    "required_snr_db",
    "select_mcs",
]

BLER_TABLE_DIR = Path(__file__).resolve().parent / "bler_tables"

_NAME = re.compile(r"^\s*(\d+)\s*-?\s*QAM\s*-\s*(\d+)\s*/\s*(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Mcs:
    """A modulation and coding scheme: square QAM with ``2^m`` points and a code rate ``R``.

    One complex channel use carries ``m`` coded bits, so ``k`` channel uses carry ``k m`` coded bits
    and ``k m R`` bits before the code (the CRC included, see :class:`~semcom.sscc.link.LdpcQamLink`).

    Args:
        modulation_order: bits per QAM symbol ``m``: 2 (4QAM/QPSK), 4, 6 or 8.
        code_rate: LDPC code rate ``R`` in (0, 0.925], kept as an exact fraction (``1/3`` stays
            ``1/3``; floats are converted with a denominator of at most 1024).

    Example:
        >>> Mcs(4, Fraction(2, 3)).name
        '16QAM-2/3'
        >>> get_mcs("64QAM-3/4").spectral_efficiency
        4.5
    """

    modulation_order: int
    code_rate: Fraction

    def __post_init__(self) -> None:
        if self.modulation_order not in (2, 4, 6, 8):
            raise ValueError(f"modulation_order must be 2, 4, 6 or 8 bits per symbol, "
                             f"not {self.modulation_order}")
        rate = Fraction(self.code_rate).limit_denominator(1024)
        if not 0 < rate <= Fraction(948, 1024):
            raise ValueError(f"code_rate must be in (0, 948/1024] (5G LDPC), not {self.code_rate}")
        object.__setattr__(self, "code_rate", rate)

    @property
    def name(self) -> str:
        """``"{2^m}QAM-{num}/{den}"``, e.g. ``"4QAM-1/2"``."""
        return f"{2**self.modulation_order}QAM-{self.code_rate.numerator}/{self.code_rate.denominator}"

    @property
    def spectral_efficiency(self) -> float:
        """Nominal bits per complex channel use before the code, ``m R``."""
        return float(self.modulation_order * self.code_rate)

    @classmethod
    def parse(cls, name: str) -> Mcs:
        """Build from a name like ``"16QAM-2/3"`` (case and spaces do not matter)."""
        match = _NAME.match(name)
        if match is None:
            raise ValueError(f"not an MCS name: {name!r} (expected e.g. '4QAM-1/2')")
        points, num, den = (int(g) for g in match.groups())
        m = points.bit_length() - 1
        if 2**m != points:
            raise ValueError(f"{name!r}: the number of QAM points must be a power of two")
        return cls(m, Fraction(num, den))

    def __str__(self) -> str:
        return self.name


MCS_TABLE: tuple[Mcs, ...] = tuple(
    Mcs(m, Fraction(r))
    for m, r in [
        (2, "1/3"), (2, "1/2"), (2, "2/3"),
        (4, "1/2"), (4, "2/3"),
        (6, "1/2"), (6, "2/3"), (6, "3/4"),
        (8, "3/4"),
    ]
)
"""The MCS of the deep-JSCC literature, in increasing spectral efficiency, plus 256QAM-3/4."""


def get_mcs(name: str | Mcs) -> Mcs:
    """The :class:`Mcs` called ``name`` (any valid name, not only those in ``MCS_TABLE``)."""
    return name if isinstance(name, Mcs) else Mcs.parse(name)


# --------------------------------------------------------------------------------------------------
# Cached BLER curves and MCS selection
# --------------------------------------------------------------------------------------------------


@dataclass
class BlerCurve:
    """Monte Carlo block error rate of one MCS at one block length, one point per SNR.

    Attributes:
        mcs: the scheme's name.
        num_symbols: complex channel uses per block ``k``.
        info_bits: transport block size (payload bits per block, CRC excluded); 0 if nothing fits.
        snr_db: Es/N0 per complex symbol of each point, in dB (increasing).
        blocks: blocks simulated at each point.
        errors: blocks whose TB CRC failed at each point.
    """

    mcs: str
    num_symbols: int
    info_bits: int
    snr_db: list[float] = field(default_factory=list)
    blocks: list[int] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)

    @property
    def bler(self) -> list[float]:
        """``errors / blocks`` per point."""
        return [e / b for e, b in zip(self.errors, self.blocks, strict=True)]

    def bler_at(self, snr_db: float) -> float:
        """BLER at ``snr_db``, linear interpolation of log10(BLER) in dB between points.

        A point without errors counts as ``0.5 / blocks``; the points are first made non-increasing
        (each takes the worst of itself and the points above it), so the result never rises with the
        SNR. Below the first point the BLER is 1, above the last point it is the last point's value.
        A curve with ``info_bits == 0`` is 1 everywhere (nothing can be sent).
        """
        if self.info_bits == 0 or not self.snr_db:
            return 1.0
        logs = self._log_envelope()
        xs = self.snr_db
        if snr_db < xs[0]:
            return 1.0
        if snr_db >= xs[-1]:
            return 10 ** logs[-1]
        for i in range(1, len(xs)):
            if snr_db <= xs[i]:
                t = (snr_db - xs[i - 1]) / (xs[i] - xs[i - 1])
                return 10 ** (logs[i - 1] + t * (logs[i] - logs[i - 1]))
        return 10 ** logs[-1]  # pragma: no cover

    def required_snr_db(self, target_bler: float) -> float:
        """Lowest SNR (dB) at which :meth:`bler_at` reaches ``target_bler`` (``inf`` if it never does).

        Monte Carlo wiggles above the target after the crossing push the answer up (conservative).
        """
        if self.info_bits == 0 or not self.snr_db:
            return math.inf
        target = math.log10(target_bler)
        logs = self._log_envelope()
        if logs[-1] > target:
            return math.inf
        i = next(j for j, v in enumerate(logs) if v <= target)
        if i == 0:
            return self.snr_db[0]
        x0, x1, l0, l1 = self.snr_db[i - 1], self.snr_db[i], logs[i - 1], logs[i]
        return x0 + (l0 - target) / (l0 - l1) * (x1 - x0)

    def _log_envelope(self) -> list[float]:
        """log10(BLER) per point, made non-increasing in SNR by taking the worst of each point and all
        points above it (Monte Carlo wiggles never make a higher SNR look better than a lower one)."""
        logs = [math.log10(max(e, 0.5) / b) for e, b in zip(self.errors, self.blocks, strict=True)]
        for i in range(len(logs) - 2, -1, -1):
            logs[i] = max(logs[i], logs[i + 1])
        return logs


@dataclass
class BlerTable:
    """All cached curves for one channel and one block length (one JSON file).

    Attributes:
        channel: channel name (``"awgn"``, ...).
        num_symbols: complex channel uses per block.
        decoder: the decoder configuration of the run (``num_bp_iter``, ``cn_update``).
        curves: one :class:`BlerCurve` per MCS name.
        meta: command, date, versions, run time.
    """

    channel: str
    num_symbols: int
    decoder: dict[str, Any]
    curves: dict[str, BlerCurve]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "num_symbols": self.num_symbols,
            "decoder": self.decoder,
            "meta": self.meta,
            "curves": {name: {**asdict(c), "bler": c.bler} for name, c in self.curves.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BlerTable:
        fields = ("mcs", "num_symbols", "info_bits", "snr_db", "blocks", "errors")
        curves = {name: BlerCurve(**{f: c[f] for f in fields}) for name, c in data["curves"].items()}
        return cls(data["channel"], int(data["num_symbols"]), data["decoder"], curves, data.get("meta", {}))


def bler_table_path(channel: str, num_symbols: int, directory: Path | None = None) -> Path:
    """The file of the BLER table of ``channel`` at ``num_symbols`` symbols per block:
    ``{directory}/{channel}_k{num_symbols}.json`` (default directory: :data:`BLER_TABLE_DIR`)."""
    return (directory or BLER_TABLE_DIR) / f"{channel}_k{num_symbols}.json"


class BlerTableMissing(SemcomError, FileNotFoundError):
    """No cached BLER table for a channel and block length; the message names the command to run."""


@lru_cache(maxsize=64)
def load_bler_table(num_symbols: int, channel: str = "awgn", directory: Path | None = None) -> BlerTable:
    """The cached :class:`BlerTable` for ``channel`` at ``num_symbols`` symbols per block.

    Raises :class:`BlerTableMissing` (a ``FileNotFoundError``) naming the command that computes it.
    """
    path = bler_table_path(channel, num_symbols, directory)
    if not path.is_file():
        have = sorted(p.stem for p in (directory or BLER_TABLE_DIR).glob("*.json"))
        raise BlerTableMissing(
            f"no BLER table for channel={channel!r} at {num_symbols} symbols per block ({path.name}); "
            f"available: {', '.join(have) or '(none)'}. Compute it with: "
            f"semcom bler --num-symbols {num_symbols} --channel {channel}"
        )
    return BlerTable.from_json(json.loads(path.read_text()))


def bler_at(mcs: Mcs | str, num_symbols: int, snr_db: float, channel: str = "awgn") -> float:
    """BLER of ``mcs`` at ``snr_db`` for ``num_symbols``-symbol blocks, from the cached table."""
    table = load_bler_table(int(num_symbols), channel)
    name = get_mcs(mcs).name
    if name not in table.curves:
        raise KeyError(f"{name} is not in the BLER table {channel}_k{num_symbols}")
    return table.curves[name].bler_at(float(snr_db))


def required_snr_db(
    mcs: Mcs | str, num_symbols: int, target_bler: float = 0.1, channel: str = "awgn"
) -> float:
    """SNR (dB) from which ``mcs`` meets ``target_bler`` at this block length (``inf`` if never)."""
    table = load_bler_table(int(num_symbols), channel)
    return table.curves[get_mcs(mcs).name].required_snr_db(target_bler)


def select_mcs(
    snr_db: float,
    num_symbols: int,
    target_bler: float = 0.1,
    channel: str = "awgn",
    mcs_table: Sequence[Mcs] = MCS_TABLE,
) -> Mcs | None:
    """The MCS that carries the most information bits with BLER < ``target_bler`` at ``snr_db``.

    The BLER is interpolated from the cached table of ``channel`` at ``num_symbols`` symbols per block
    (see :meth:`BlerCurve.bler_at`). "Most information bits" is the transport block size actually
    carried in ``num_symbols`` symbols (ties: the lower BLER). ``None`` when no scheme qualifies:
    the caller counts an outage.

    Raises ``FileNotFoundError`` (with the command to run) when no table exists for this length.
    """
    table = load_bler_table(int(num_symbols), channel)
    best: tuple[int, float, Mcs] | None = None
    for mcs in mcs_table:
        curve = table.curves.get(mcs.name)
        if curve is None or curve.info_bits == 0:
            continue
        bler = curve.bler_at(float(snr_db))
        if bler >= target_bler:
            continue
        if best is None or (curve.info_bits, -bler) > (best[0], -best[1]):
            best = (curve.info_bits, bler, mcs)
    return None if best is None else best[2]
