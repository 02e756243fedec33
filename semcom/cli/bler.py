"""``semcom bler``: compute the cached BLER tables of the SSCC link; a thin wrapper.

The work is done by :func:`semcom.sscc.bler.compute_bler_table`, imported inside the command so that
``semcom --help`` stays fast (no torch or Sionna import here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["bler_cmd"]


def _ints(text: str, what: str) -> list[int]:
    from semcom.errors import SemcomError

    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise SemcomError(f"{what}: expected whole numbers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise SemcomError(f"{what}: expected positive whole numbers separated by commas, got {text!r}")
    return values


def bler_cmd(
    ctx: typer.Context,
    num_symbols: Annotated[str, typer.Option(help="Symbols per block, one table each, e.g. 43,130,512.",
                                             show_default=False)],
    channel: Annotated[str, typer.Option(help="Channel: awgn, rayleigh, rician.")] = "awgn",
    mcs: Annotated[str | None, typer.Option(help="MCS names, e.g. 4QAM-1/2,16QAM-2/3 (default: every "
                                                 "fixed scheme `semcom list mcs` shows).")] = None,
    max_blocks: Annotated[int, typer.Option(min=1, help="Most blocks per SNR point.")] = 500,
    min_errors: Annotated[int, typer.Option(min=1, help="Block errors that end an SNR point.")] = 50,
    batch_size: Annotated[int, typer.Option(min=1, help="Blocks per batch.")] = 100,
    step_db: Annotated[float, typer.Option(help="SNR step of the sweep in dB (twice that while "
                                                "BLER >= 0.95).")] = 0.5,
    stop_bler: Annotated[float, typer.Option(help="The sweep stops below this BLER.")] = 0.01,
    num_bp_iter: Annotated[int, typer.Option(min=1, help="BP iterations of the LDPC decoder.")] = 20,
    cn_update: Annotated[str, typer.Option(help="Check-node rule: boxplus-phi, boxplus, minsum, "
                                                "offset-minsum.")] = "boxplus-phi",
    decoder: Annotated[str, typer.Option(help="LDPC decoder: sionna (the reference) or fast (same BP, "
                                              "a faster kernel; boxplus-phi or minsum).")] = "sionna",
    seed: Annotated[int, typer.Option(help="Seed of the payloads and the channel.")] = 0,
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes (one MCS each at a time).")] = 1,
    threads: Annotated[int | None, typer.Option(min=1, help="Torch threads per process (default: 1 with "
                                                            "--jobs > 1, else torch's choice).")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder of the tables (default: "
                                                  "semcom/sscc/bler_tables, the ones semcom reads).")] = None,
) -> None:
    """Compute BLER tables (Monte Carlo of 5G LDPC + QAM): one JSON file per block length.

    Prints, per MCS, the transport block size and the SNR at which the BLER reaches 0.1.

    Example: semcom bler --num-symbols 43,130,512 --channel awgn --jobs 2
    """
    from semcom.errors import SemcomError
    from semcom.sscc.bler import compute_bler_table
    from semcom.sscc.link import DECODERS
    from semcom.sscc.mcs import MCS_TABLE, get_mcs

    if decoder not in DECODERS:
        raise SemcomError(f"--decoder: expected one of {', '.join(DECODERS)}, got {decoder!r}")
    sizes = _ints(num_symbols, "--num-symbols")
    try:
        mcs_list = [get_mcs(n) for n in (mcs or "").replace(" ", "").split(",") if n] or list(MCS_TABLE)
    except ValueError as exc:
        raise SemcomError(f"--mcs: {exc}") from None
    from semcom.cli.options import command_line  # lazy: keeps `semcom --help` free of pydantic models

    command = command_line(ctx, "bler")
    for k in sizes:
        table = compute_bler_table(
            k, channel, mcs_list, directory=out, command=command, jobs=jobs, threads=threads,
            max_blocks=max_blocks, min_errors=min_errors, batch_size=batch_size, step_db=step_db,
            stop_bler=stop_bler, num_bp_iter=num_bp_iter, cn_update=cn_update, seed=seed,
            **({"decoder": decoder} if decoder != "sionna" else {}),
        )
        typer.echo(f"{channel} k={k}: {table.meta['seconds']} s")
        for name, c in table.curves.items():
            req = c.required_snr_db(0.1)
            typer.echo(f"  {name:>10}  TBS={c.info_bits:5d}  SNR@BLER0.1={req:6.2f} dB  points={len(c.snr_db)}")
