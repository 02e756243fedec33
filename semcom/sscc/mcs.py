"""Modulation and coding schemes (MCS) of the SSCC baseline, their BLER curves and MCS selection.

An :class:`Mcs` is a QAM order and a 5G LDPC code rate, named like ``"4QAM-1/2"``. ``MCS_TABLE``
holds the schemes of the deep-JSCC literature (4QAM 1/3, 1/2, 2/3; 16QAM 1/2, 2/3; 64QAM 1/2, 2/3,
3/4) plus 256QAM 3/4.

BLER curves are semcom's own Monte Carlo runs of :class:`~semcom.sscc.link.LdpcQamLink` (5G LDPC,
TS 38.212, with the TB CRC of TS 38.214; QAM; APP demapper), one curve per (channel, number of
symbols per block, MCS). They are cached as JSON in ``semcom/sscc/bler_tables/``, one file per
(channel, block length); each file records the exact command that made it. Regenerate or extend
them with::

    python -m semcom.sscc.mcs --num-symbols 43 130 512 170 171 44 --channel awgn --jobs 2

(the command that made the shipped AWGN tables: MNIST at rho = 1/6 sends 130 symbols per image, in
three layers of 43/43/44; CIFAR-10 sends 512, in layers of 170/171/171). It took 7.7 CPU-minutes
(user time), 20 minutes wall-clock with two worker processes of one torch thread each on the shared
2-core development machine; one torch thread per process avoids the oversubscription stalls of
LDPC decoding with several threads on a busy machine.

:func:`select_mcs` reads those tables: the scheme that carries the most information bits whose BLER,
interpolated at the operating SNR, is below the target. Operating points outside a table's SNR range
are extrapolated conservatively (BLER = 1 below the first point, the last measured value above the
last point).

The Monte Carlo estimate at each SNR uses batches of ``batch_size`` blocks until ``min_errors`` block
errors or ``max_blocks`` blocks; a point with no error is stored with its zero count and read as
``0.5 / blocks`` when interpolating in log(BLER). The sweep starts where the normal approximation of
the finite-length bound (Gaussian inputs, Polyanskiy et al. 2010) gives BLER 0.9 for ``TBS + CRC``
bits in ``k`` channel uses -- a practical code is at BLER ~1 there -- and goes up in steps of
``2 step_db`` while BLER >= 0.95, then ``step_db``, until the BLER falls below ``stop_bler``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import re
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from semcom.errors import SemcomError

__all__ = [
    "BLER_TABLE_DIR",
    "MCS_TABLE",
    "BlerCurve",
    "BlerTable",
    "BlerTableMissing",
    "Mcs",
    "bler_at",
    "compute_bler_curve",
    "compute_bler_table",
    "get_mcs",
    "load_bler_table",
    "main",
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
# BLER curves
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


def _table_path(channel: str, num_symbols: int, directory: Path | None = None) -> Path:
    return (directory or BLER_TABLE_DIR) / f"{channel}_k{num_symbols}.json"


def _sweep_start_db(payload_bits: int, num_symbols: int, eps: float = 0.9) -> float:
    """SNR (dB) at which even the best code of this size has BLER ``eps`` on the complex AWGN channel.

    Normal approximation (Polyanskiy, Poor, Verdu 2010) with Gaussian inputs:
    ``log2 M = k C - sqrt(k V) Q^-1(eps) + log2(k) / 2``, ``C = log2(1 + g)``,
    ``V = g (g + 2) / (g + 1)^2 log2(e)^2`` per complex use. A practical code is worse, so its BLER is
    ~1 there: the sweep starts here.
    """
    from statistics import NormalDist

    q_inv = NormalDist().inv_cdf(1 - eps)
    lo, hi = -20.0, 60.0
    for _ in range(60):
        mid = (lo + hi) / 2
        g = 10 ** (mid / 10)
        v = g * (g + 2) / (g + 1) ** 2 * math.log2(math.e) ** 2
        k = num_symbols
        bits = k * math.log2(1 + g) - math.sqrt(k * v) * q_inv + 0.5 * math.log2(k)
        lo, hi = (mid, hi) if bits < payload_bits else (lo, mid)
    return hi


def compute_bler_curve(
    mcs: Mcs | str,
    num_symbols: int,
    snrs_db: Sequence[float] | None = None,
    channel: str = "awgn",
    *,
    max_blocks: int = 500,
    min_errors: int = 50,
    batch_size: int = 100,
    step_db: float = 0.5,
    stop_bler: float = 0.01,
    num_bp_iter: int = 20,
    cn_update: str = "boxplus-phi",
    seed: int = 0,
    device: str = "cpu",
) -> BlerCurve:
    """Monte Carlo BLER of :class:`~semcom.sscc.link.LdpcQamLink` (TB CRC failures / blocks).

    Random payloads ``[batch_size, info_bits]`` go through the link and the channel (perfect CSI);
    at each SNR, batches run until ``min_errors`` block errors or ``max_blocks`` blocks.

    Args:
        mcs: the scheme (or its name).
        num_symbols: complex channel uses per block ``k``.
        snrs_db: SNR points (Es/N0 per complex symbol, dB). ``None``: an adaptive sweep in steps of
            ``step_db`` (twice that while BLER >= 0.95) from where the finite-length bound gives
            BLER 0.9 (rounded down to the grid) until BLER < ``stop_bler`` (at most 40 points).
        channel: a name from :data:`semcom.channels.CHANNELS` (fading: one gain per block).
        seed: seeds both the payloads and the channel; the same arguments give the same curve.

    Returns:
        :class:`BlerCurve` (empty, ``info_bits = 0``, when no transport block fits).
    """
    from semcom.channels import build_channel
    from semcom.sscc.link import LdpcQamLink, transport_block_size

    mcs = get_mcs(mcs)
    tbs = transport_block_size(mcs, num_symbols)
    curve = BlerCurve(mcs.name, int(num_symbols), tbs)
    if tbs == 0:
        return curve
    link = LdpcQamLink(mcs, num_symbols, num_bp_iter=num_bp_iter, cn_update=cn_update, device=device)
    ch = build_channel(channel, seed=seed, device=device)
    gen = torch.Generator(device=device).manual_seed(seed + 1)

    def point(snr: float) -> tuple[int, int]:
        blocks = errors = 0
        while blocks < max_blocks and errors < min_errors:
            b = min(batch_size, max_blocks - blocks)
            bits = torch.randint(0, 2, (b, tbs), generator=gen, device=device, dtype=torch.float32)
            bits_hat, ok = link(bits, ch, snr)
            # a CRC false positive would still be a block error: count both
            wrong = ~ok | (bits_hat != bits).any(dim=-1)
            blocks += b
            errors += int(wrong.sum())
        return blocks, errors

    if snrs_db is not None:
        points = [float(s) for s in snrs_db]
        for snr in points:
            nb, ne = point(snr)
            curve.snr_db.append(snr)
            curve.blocks.append(nb)
            curve.errors.append(ne)
        return curve

    snr = step_db * math.floor(_sweep_start_db(tbs + link.crc_bits, num_symbols) / step_db)
    for _ in range(40):
        nb, ne = point(snr)
        curve.snr_db.append(round(snr, 6))
        curve.blocks.append(nb)
        curve.errors.append(ne)
        if ne / nb < stop_bler:
            break
        snr += 2 * step_db if ne / nb >= 0.95 else step_db  # coarse above the waterfall
    return curve


def _curve_job(args: tuple[str, int, str, int | None, dict[str, Any]]) -> BlerCurve:
    name, num_symbols, channel, threads, kwargs = args
    if threads:
        torch.set_num_threads(threads)
    return compute_bler_curve(name, num_symbols, channel=channel, **kwargs)


def compute_bler_table(
    num_symbols: int,
    channel: str = "awgn",
    mcs_list: Sequence[Mcs | str] = MCS_TABLE,
    *,
    directory: Path | None = None,
    command: str | None = None,
    jobs: int = 1,
    threads: int | None = None,
    **kwargs: Any,
) -> BlerTable:
    """Compute the curves of every MCS in ``mcs_list`` at one block length and write the JSON file.

    The file ``{directory}/{channel}_k{num_symbols}.json`` (default: ``semcom/sscc/bler_tables``) is
    replaced. ``kwargs`` go to :func:`compute_bler_curve`; ``command`` is recorded in the file.
    ``jobs > 1`` runs the MCS in that many worker processes (``threads`` torch threads each, default
    1); every curve has its own seeded streams, so the result does not depend on ``jobs``.
    """
    import sionna.phy

    t0 = time.perf_counter()
    names = [get_mcs(m).name for m in mcs_list]
    if jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # the costliest curves (most coded bits) first, for balance
        order = sorted(names, key=lambda n: -get_mcs(n).modulation_order)
        work = [(n, int(num_symbols), channel, threads or 1, kwargs) for n in order]
        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            done = dict(zip(order, pool.map(_curve_job, work), strict=True))
        curves = {n: done[n] for n in names}
    else:
        curves = {n: _curve_job((n, int(num_symbols), channel, threads, kwargs)) for n in names}
    decoder = {"num_bp_iter": kwargs.get("num_bp_iter", 20),
               "cn_update": kwargs.get("cn_update", "boxplus-phi")}
    meta = {
        "command": command or "semcom.sscc.mcs.compute_bler_table(...)",
        "date": datetime.date.today().isoformat(),
        "seconds": round(time.perf_counter() - t0, 1),
        "jobs": jobs,
        "torch": torch.__version__,
        "sionna": getattr(sionna.phy, "__version__", None) or _dist_version("sionna-no-rt"),
        "settings": {k: v for k, v in kwargs.items() if k not in ("num_bp_iter", "cn_update")},
        "link": "semcom.sscc.link.LdpcQamLink: 5G TB (CRC16/24A, LDPC BG1/BG2, rate matching), "
                "Gray QAM, APP demapper, perfect CSI; TBS + CRC <= floor(k m R)",
    }
    table = BlerTable(channel, int(num_symbols), decoder, curves, meta)
    path = _table_path(channel, num_symbols, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table.to_json(), indent=1) + "\n")
    load_bler_table.cache_clear()
    return table


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


class BlerTableMissing(SemcomError, FileNotFoundError):
    """No cached BLER table for a channel and block length; the message names the command to run."""


@lru_cache(maxsize=64)
def load_bler_table(num_symbols: int, channel: str = "awgn", directory: Path | None = None) -> BlerTable:
    """The cached :class:`BlerTable` for ``channel`` at ``num_symbols`` symbols per block.

    Raises :class:`BlerTableMissing` (a ``FileNotFoundError``) naming the command that computes it.
    """
    path = _table_path(channel, num_symbols, directory)
    if not path.is_file():
        have = sorted(p.stem for p in (directory or BLER_TABLE_DIR).glob("*.json"))
        raise BlerTableMissing(
            f"no BLER table for channel={channel!r} at {num_symbols} symbols per block ({path.name}); "
            f"available: {', '.join(have) or '(none)'}. Compute it with: "
            f"python -m semcom.sscc.mcs --num-symbols {num_symbols} --channel {channel}"
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


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: ``python -m semcom.sscc.mcs --num-symbols 43 130 512 [--channel awgn] [--out DIR]``."""
    ap = argparse.ArgumentParser(prog="python -m semcom.sscc.mcs", description="Compute cached BLER tables.")
    ap.add_argument("--num-symbols", type=int, nargs="+", required=True, help="symbols per block")
    ap.add_argument("--channel", default="awgn")
    ap.add_argument("--mcs", nargs="*", default=None, help="MCS names (default: all of MCS_TABLE)")
    ap.add_argument("--max-blocks", type=int, default=500)
    ap.add_argument("--min-errors", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--step-db", type=float, default=0.5)
    ap.add_argument("--stop-bler", type=float, default=0.01)
    ap.add_argument("--num-bp-iter", type=int, default=20)
    ap.add_argument("--cn-update", default="boxplus-phi")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (one MCS each at a time)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads per process (default: 1 with --jobs > 1, else torch's choice)")
    ap.add_argument("--out", type=Path, default=None, help="directory (default: semcom/sscc/bler_tables)")
    args = ap.parse_args(argv)
    mcs_list = [get_mcs(n) for n in args.mcs] if args.mcs else list(MCS_TABLE)
    words = ["python", "-m", "semcom.sscc.mcs", *(sys.argv[1:] if argv is None else list(argv))]
    for k in args.num_symbols:
        table = compute_bler_table(
            k, args.channel, mcs_list, directory=args.out, command=shlex.join(words), jobs=args.jobs,
            threads=args.threads,
            max_blocks=args.max_blocks, min_errors=args.min_errors, batch_size=args.batch_size,
            step_db=args.step_db, stop_bler=args.stop_bler, num_bp_iter=args.num_bp_iter,
            cn_update=args.cn_update, seed=args.seed,
        )
        print(f"{args.channel} k={k}: {table.meta['seconds']} s")
        for name, c in table.curves.items():
            req = c.required_snr_db(0.1)
            print(f"  {name:>10}  TBS={c.info_bits:5d}  SNR@BLER0.1={req:6.2f} dB  points={len(c.snr_db)}")


if __name__ == "__main__":
    # run the imported module's main, not this __main__ copy: its Mcs class is the one the link knows
    from semcom.sscc.mcs import main as _main

    _main()
