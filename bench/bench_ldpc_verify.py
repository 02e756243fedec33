"""Verify the fast LDPC decoder against Sionna's: BLER curves of every MCS, and noiseless codewords.

    python bench/bench_ldpc_verify.py [--num-symbols 130] [--max-blocks 200] [--min-errors 50]
                                      [--cn-update boxplus-phi] [--z 1.96]

For every MCS of ``semcom.sscc.mcs.MCS_TABLE`` (that fits ``--num-symbols``): the BLER curve of the link
with Sionna's decoder (the adaptive sweep of ``semcom bler``, 0.5 dB steps down to BLER 0.01), then
the curve of the link with the fast decoder at the same SNR points with the same seed (so both see the
same payloads and noise). Each fast point must lie inside the Wilson score interval (``--z`` standard
deviations) of Sionna's point. Then a batch of noiseless codewords (logits +-20) must decode to
exactly the payload with the fast decoder. Prints a row per MCS and writes
bench/results/ldpc_verify.json; exits with status 1 if any check fails.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch
from _common import write_json


def wilson(errors: int, blocks: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``errors / blocks`` at ``z`` standard deviations."""
    p, n = errors / blocks, blocks
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, mid - half - 1e-9), min(1.0, mid + half + 1e-9)  # closed at 0 and 1 despite rounding


def main() -> None:
    from semcom.sscc.bler import compute_bler_curve
    from semcom.sscc.link import LdpcQamLink, transport_block_size
    from semcom.sscc.mcs import MCS_TABLE

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--num-symbols", type=int, default=130)
    ap.add_argument("--max-blocks", type=int, default=200)
    ap.add_argument("--min-errors", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--cn-update", default="boxplus-phi", choices=["boxplus-phi", "minsum"])
    ap.add_argument("--z", type=float, default=1.96, help="width of the Wilson interval, in standard deviations")
    ap.add_argument("--mcs", nargs="*", default=None, help="MCS names (default: the whole table)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    names = args.mcs or [m.name for m in MCS_TABLE]
    kw = {"max_blocks": args.max_blocks, "min_errors": args.min_errors, "batch_size": args.batch_size,
          "cn_update": args.cn_update, "seed": args.seed}
    rows, failures = [], 0
    for name in names:
        if transport_block_size(name, args.num_symbols) == 0:
            print(f"{name:>10}: no TB fits {args.num_symbols} symbols, skipped")
            continue
        t0 = time.perf_counter()
        ref = compute_bler_curve(name, args.num_symbols, **kw)  # type: ignore[arg-type]
        t1 = time.perf_counter()
        fast = compute_bler_curve(name, args.num_symbols, snrs_db=ref.snr_db, decoder="fast",
                                  **kw)  # type: ignore[arg-type]
        t2 = time.perf_counter()
        points = []
        for snr, nb, e_ref, nb_fast, e_fast in zip(ref.snr_db, ref.blocks, ref.errors, fast.blocks, fast.errors,
                                                   strict=True):
            lo, hi = wilson(e_ref, nb, args.z)
            inside = nb_fast == nb and lo <= e_fast / nb_fast <= hi
            points.append({"snr_db": snr, "blocks": nb, "errors_sionna": e_ref, "errors_fast": e_fast,
                           "interval": [lo, hi], "inside": inside})
        link = LdpcQamLink(name, args.num_symbols, cn_update=args.cn_update, decoder="fast")
        bits = torch.randint(0, 2, (50, link.info_bits), generator=torch.Generator().manual_seed(args.seed)).float()
        bits_hat, ok = link.decode(20.0 * (2 * link.encode(bits) - 1))
        noiseless = bool(ok.all()) and bool((bits_hat == bits).all())
        good = noiseless and all(p["inside"] for p in points)
        failures += not good
        rows.append({"mcs": name, "info_bits": ref.info_bits, "points": points, "noiseless_bit_exact": noiseless,
                     "ok": good, "seconds_sionna": t1 - t0, "seconds_fast": t2 - t1})
        diff = max(abs(p["errors_sionna"] - p["errors_fast"]) for p in points)
        print(f"{name:>10} TBS={ref.info_bits:<5d} points={len(points):2d} max |errors diff|={diff:3d}  "
              f"inside={sum(p['inside'] for p in points)}/{len(points)}  noiseless exact={noiseless}  "
              f"time sionna {t1 - t0:6.1f} s fast {t2 - t1:6.1f} s  {'OK' if good else 'FAIL'}", flush=True)
    cmd = (f"python bench/bench_ldpc_verify.py --num-symbols {args.num_symbols} --max-blocks {args.max_blocks} "
           f"--min-errors {args.min_errors} --cn-update {args.cn_update} --z {args.z}")
    path = write_json("ldpc_verify", {"rows": rows, "all_ok": failures == 0, "command": cmd, "settings": vars(args)})
    print(f"{'all OK' if failures == 0 else f'{failures} MCS FAILED'}; wrote {path}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
