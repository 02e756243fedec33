"""The SSCC cliff: PSNR vs SNR of codec + 5G LDPC + QAM at every MCS, and codec + capacity.

    python bench/bench_sscc.py --dataset cifar10 --data-root DATA --count 50
    python bench/bench_sscc.py --dataset mnist --data-root DATA --count 50

One layer of k = floor(n / 6) complex symbols per image (rho = 1/6: 512 for CIFAR-10, 130 for MNIST),
AWGN, payload header accounting (docs/codecs.md), one quality byte per image counted. For every
codec and MCS the batch is encoded once and sent at each SNR; "capacity" gives the codec
floor(k log2(1 + SNR)) error-free bits. Also times the chain: codec (rate matching + decoding) vs.
the LDPC link, in images per second. Writes bench/results/sscc_<dataset>.json; plot it with
``python bench/plot_sscc.py``.
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import write_json

from semcom.channels import build_channel
from semcom.data import load_dataset
from semcom.metrics import psnr, summarize
from semcom.sscc.mcs import MCS_TABLE
from semcom.sscc.system import SsccSystem


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--codecs", nargs="+", default=["jpeg", "hevc-intra"])
    ap.add_argument("--snrs", type=float, nargs="+", default=[float(s) for s in range(-2, 23, 2)])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    ds = load_dataset(args.dataset, "test", root=args.data_root, subset=args.count)
    images = ds.images()
    c, h, w = ds.shape
    k = (c * h * w) // 6
    rows, timing = [], []
    for codec in args.codecs:
        for mcs in [m.name for m in MCS_TABLE] + ["capacity"]:
            system = SsccSystem(codec, mcs, [k], ds.mean_image())
            tx = system.prepare(images, [args.snrs[0]])
            t0 = time.perf_counter()
            for snr in args.snrs:
                (out,) = system.receive(tx, build_channel("awgn", seed=0), snr, resolution=1)
                p = summarize(psnr(images, out.images))
                rows.append({"codec": codec, "mcs": mcs, "snr_db": snr, "psnr_db": p.mean, "psnr_ci95": p.ci95,
                             "outage": float(out.outage.float().mean()), "bits_mean": out.info["bits_mean"]})
            elapsed = time.perf_counter() - t0
            best = max(r["psnr_db"] for r in rows[-len(args.snrs):])
            print(f"{codec:10s} {mcs:10s} best {best:6.2f} dB  "
                  f"outage by SNR {[round(r['outage'], 2) for r in rows[-len(args.snrs):]]}  ({elapsed:.0f} s)")
        timing.append(_time_chain(codec, ds, images, k))
        print(f"{codec}: {timing[-1]}")
    path = write_json(f"sscc_{args.dataset}", {
        "command": f"python bench/bench_sscc.py --dataset {args.dataset} --count {args.count}"
                   + (f" --data-root {args.data_root}" if args.data_root else ""),
        "dataset": args.dataset, "count": len(ds), "symbols_per_image": k, "channel": "awgn",
        "header_accounting": "payload", "rows": rows, "timing": timing})
    print(f"wrote {path}")


def _time_chain(codec: str, ds: object, images: torch.Tensor, k: int) -> dict[str, float]:
    """Images/s of the whole chain at 16QAM-1/2 and 20 dB, split into codec and LDPC link time."""
    system = SsccSystem(codec, "16QAM-1/2", [k], ds.mean_image())  # type: ignore[attr-defined]
    link = system._link("16QAM-1/2", k)
    budget = system._payload_budget_bits("16QAM-1/2", k)
    t0 = time.perf_counter()
    payloads = system._source_layers(images, [budget])[0]
    t_codec_tx = time.perf_counter() - t0
    t0 = time.perf_counter()
    bits = link.pack_payloads([p or b"" for p in payloads])
    got = link.unpack_payloads(*link(bits, build_channel("awgn", seed=0), 20.0))
    t_link = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p in got:
        if p:
            system.codec.decode(p[1:], tuple(images.shape[1:]), p[0])
    t_codec_rx = time.perf_counter() - t0
    n = len(images)
    total = t_codec_tx + t_link + t_codec_rx
    return {"codec": codec, "images_per_s": n / total, "codec_share": (t_codec_tx + t_codec_rx) / total,
            "ldpc_link_share": t_link / total, "codec_ms_per_image": 1e3 * (t_codec_tx + t_codec_rx) / n,
            "link_ms_per_image": 1e3 * t_link / n}


if __name__ == "__main__":
    main()
