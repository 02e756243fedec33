"""Channel throughput: semcom's channels against calling sionna.phy directly, in one run.

    python bench/bench_channels.py [--sizes 1e6 1e7] [--repeats 5]

Prints complex symbols/s for forward and forward+backward, and semcom's overhead over the direct
Sionna call (target: <= 5%). Writes bench/results/channels.json.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import torch
from _common import write_json


def _best_rate(fn: Callable[[], None], n: int, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def _measure(size: float, repeats: int) -> list[dict]:
    """Rows for one problem size: both channels, forward and forward+backward."""
    from sionna.phy.channel import AWGN, GenerateFlatFadingChannel

    from semcom.channels import AwgnChannel, RayleighChannel

    rows = []
    batch = 1000
    n = int(size) // batch
    total = batch * n
    x0 = torch.randn(batch, n, dtype=torch.complex64)
    no = torch.full((batch, 1), 0.1)
    awgn = AWGN(device="cpu")
    fading = GenerateFlatFadingChannel(1, 1, device="cpu")
    ours_awgn = AwgnChannel(seed=0)
    ours_ray = RayleighChannel(block="symbol", seed=0)

    def direct_awgn(backward: bool) -> None:
        x = x0.clone().requires_grad_(backward)
        y = awgn(x, no)
        if backward:
            y.real.sum().backward()

    def semcom_awgn(backward: bool) -> None:
        x = x0.clone().requires_grad_(backward)
        y = ours_awgn(x, 10.0).y
        if backward:
            y.real.sum().backward()

    def direct_ray(backward: bool) -> None:
        x = x0.clone().requires_grad_(backward)
        h = fading(batch * n).reshape(batch, n)
        y = awgn(h * x, no)
        if backward:
            y.real.sum().backward()

    def semcom_ray(backward: bool) -> None:
        x = x0.clone().requires_grad_(backward)
        y = ours_ray(x, 10.0).y
        if backward:
            y.real.sum().backward()

    for chan, direct, ours in [("awgn", direct_awgn, semcom_awgn), ("rayleigh/symbol", direct_ray, semcom_ray)]:
        for backward in (False, True):
            # interleave the two so both see the same machine load
            d, s = [], []
            for _ in range(repeats):
                d.append(_best_rate(lambda f=direct, b=backward: f(b), total, 1))
                s.append(_best_rate(lambda f=ours, b=backward: f(b), total, 1))
            rd, rs = statistics.median(d), statistics.median(s)
            row = {"channel": chan, "symbols": total, "pass": "fwd+bwd" if backward else "fwd",
                   "sionna_direct_sym_per_s": rd, "semcom_sym_per_s": rs,
                   "overhead_percent": 100 * (rd / rs - 1)}
            rows.append(row)
            print(f"{chan:16s} {total:>10.0e} {row['pass']:8s} sionna {rd / 1e6:7.1f} Msym/s  "
                  f"semcom {rs / 1e6:7.1f} Msym/s  overhead {row['overhead_percent']:+5.1f}%")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    rows = [row for size in args.sizes for row in _measure(size, args.repeats)]
    worst = max(r["overhead_percent"] for r in rows)
    print(f"worst overhead {worst:+.1f}% (target <= 5%): {'OK' if worst <= 5 else 'ABOVE TARGET'}")
    path = write_json("channels", {"rows": rows, "worst_overhead_percent": worst,
                                   "command": "python bench/bench_channels.py " +
                                   " ".join(f"--sizes {' '.join(f'{s:g}' for s in args.sizes)}".split())})
    print(f"wrote {path}")
    assert not math.isnan(worst)


if __name__ == "__main__":
    main()
