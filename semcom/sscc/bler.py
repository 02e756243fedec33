"""The BLER simulator: Monte Carlo block error rates of the 5G LDPC + QAM link, written as cached tables.

:func:`compute_bler_curve` sends random transport blocks through
:class:`~semcom.sscc.link.LdpcQamLink` and a channel and counts TB CRC failures, one SNR point at a
time; :func:`compute_bler_table` does it for every MCS at one block length and writes the JSON file
that :func:`semcom.sscc.mcs.load_bler_table` reads. ``semcom bler`` is the command line of
:func:`compute_bler_table`.

The estimate at each SNR uses batches of ``batch_size`` blocks until ``min_errors`` block errors or
``max_blocks`` blocks. The sweep starts where the normal approximation of the finite-length bound
(Gaussian inputs, "Channel Coding Rate in the Finite Blocklength Regime", Polyanskiy, Poor, Verdu,
2010) gives BLER 0.9 for ``TBS + CRC`` bits in ``k`` channel uses -- a practical code is at BLER ~1
there -- and goes up in steps of ``2 step_db`` while BLER >= 0.95, then ``step_db``, until the BLER
falls below ``stop_bler``. LDPC decoding with several torch threads per process stalls on a busy
machine; ``jobs`` worker processes of one thread each use the cores instead.
"""

from __future__ import annotations

import datetime
import json
import math
import multiprocessing as mp
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from pathlib import Path
from statistics import NormalDist
from typing import Any

import sionna.phy
import torch

from semcom.channels import build_channel
from semcom.sscc.link import CnUpdate, LdpcDecoder, LdpcQamLink, transport_block_size
from semcom.sscc.mcs import MCS_TABLE, BlerCurve, BlerTable, Mcs, bler_table_path, get_mcs, load_bler_table

__all__ = ["compute_bler_curve", "compute_bler_table"]


def _sweep_start_db(payload_bits: int, num_symbols: int, eps: float = 0.9) -> float:
    """SNR (dB) at which even the best code of this size has BLER ``eps`` on the complex AWGN channel.

    Normal approximation (Polyanskiy, Poor, Verdu, 2010) with Gaussian inputs:
    ``log2 M = k C - sqrt(k V) Q^-1(eps) + log2(k) / 2``, ``C = log2(1 + g)``,
    ``V = g (g + 2) / (g + 1)^2 log2(e)^2`` per complex use. A practical code is worse, so its BLER is
    ~1 there: the sweep starts here.
    """
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
    cn_update: CnUpdate = "boxplus-phi",
    seed: int = 0,
    device: str = "cpu",
    decoder: LdpcDecoder = "sionna",
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
        decoder: the link's LDPC decoder, ``"sionna"`` (the reference) or ``"fast"``
            (:class:`~semcom.sscc.ldpc_decoder.FastLdpc5GDecoder`); the draws do not depend on it.

    Returns:
        :class:`BlerCurve` (empty, ``info_bits = 0``, when no transport block fits).
    """
    mcs = get_mcs(mcs)
    tbs = transport_block_size(mcs, num_symbols)
    curve = BlerCurve(mcs.name, int(num_symbols), tbs)
    if tbs == 0:
        return curve
    link = LdpcQamLink(mcs, num_symbols, num_bp_iter=num_bp_iter, cn_update=cn_update, device=device,
                       decoder=decoder)
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
    t0 = time.perf_counter()
    names = [get_mcs(m).name for m in mcs_list]
    if jobs > 1:
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
    if kwargs.get("decoder", "sionna") != "sionna":  # tables of the reference decoder keep their format
        decoder["decoder"] = kwargs["decoder"]
    meta = {
        "command": command or "semcom.sscc.bler.compute_bler_table(...)",
        "date": datetime.date.today().isoformat(),
        "seconds": round(time.perf_counter() - t0, 1),
        "jobs": jobs,
        "torch": torch.__version__,
        "sionna": getattr(sionna.phy, "__version__", None) or _dist_version("sionna-no-rt"),
        "settings": {k: v for k, v in kwargs.items() if k not in ("num_bp_iter", "cn_update", "decoder")},
        "link": "semcom.sscc.link.LdpcQamLink: 5G TB (CRC16/24A, LDPC BG1/BG2, rate matching), "
                "Gray QAM, APP demapper, perfect CSI; TBS + CRC <= floor(k m R)",
    }
    table = BlerTable(channel, int(num_symbols), decoder, curves, meta)
    path = bler_table_path(channel, num_symbols, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table.to_json(), indent=1) + "\n")
    load_bler_table.cache_clear()
    return table


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
