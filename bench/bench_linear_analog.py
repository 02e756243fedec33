"""The linear analog code (semcom.analog) on CIFAR-10: transform, allocation, design SNR, power, layers.

    python bench/bench_linear_analog.py --cifar-root DATA

Fits each transform once on the training images minus the zoo's validation split (5,000 images, seed
0), then sends the whole test split (or ``--count`` images) through AWGN at each SNR, one channel
seed per SNR, and prints the mean per-image PSNR (pooled PSNR in the JSON) of the full reception:

- one layer of 512 symbols and three layers of 192/160/160 (the zoo's split; each layer has power 1,
  so the strongest coefficients cannot borrow the weaker layers' power: the price of layering);
- KLT of whole images and SoftCast's DCT (ranked by training variance);
- MMSE allocation designed for 10 dB, MMSE designed at the test SNR, SoftCast's lambda^-1/4;
- power on average over images, or per image with a pilot symbol per layer.

Writes ``bench/results/linear_analog.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from _common import write_json

from semcom.analog.code import LinearAnalogCode, LinearCodeConfig
from semcom.analog.store import fit_linear_code
from semcom.analog.system import LinearAnalogSystem
from semcom.channels import build_channel
from semcom.data import load_dataset
from semcom.evaluation import StreamPerSnr, evaluate_system

VARIANTS = [  # (layers, transform, allocation, design SNR, power)
    ((512,), "klt", "mmse", 10.0, "average"),
    ((512,), "klt", "mmse", None, "average"),
    ((512,), "klt", "softcast", None, "average"),
    ((512,), "klt", "mmse", 10.0, "per-image"),
    ((512,), "dct", "mmse", 10.0, "average"),
    ((192, 160, 160), "klt", "mmse", 10.0, "average"),
    ((192, 160, 160), "klt", "mmse", None, "average"),
    ((192, 160, 160), "klt", "mmse", 10.0, "per-image"),
]


def _score(code: LinearAnalogCode, test, snrs: list[float], batch: int = 1000) -> tuple[list[float], list[float]]:
    """Mean and pooled PSNR of the full reception (all layers) at each SNR; the i-th SNR's channel
    starts at seed ``100 + i``."""
    result = evaluate_system(LinearAnalogSystem(code), test, build_channel("awgn"), snrs, batch_size=batch,
                             seeds=StreamPerSnr(100), tasks={"reconstruction"})
    full = [result.summary(i, code.num_layers) for i in range(len(snrs))]
    return [round(s.psnr.mean, 3) for s in full], [round(s.psnr_pooled, 3) for s in full]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cifar-root", default=os.environ.get("SEMCOM_DATA"),
                    help="data root holding cifar-10-batches-bin/ (default: $SEMCOM_DATA)")
    ap.add_argument("--count", type=int, default=0, help="test images (0: all)")
    ap.add_argument("--snrs", default="0,5,10,15,20")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    snrs = [float(s) for s in args.snrs.split(",")]
    train, _ = load_dataset("cifar10", "train", root=args.cifar_root).split_validation(5000, seed=0)
    test = load_dataset("cifar10", "test", root=args.cifar_root)
    if args.count:
        test = test.subset(args.count)
    fitted: dict[str, LinearAnalogCode] = {}
    rows = []
    for layers, transform, allocation, design, power in VARIANTS:
        if transform not in fitted:  # the widest code of this transform; the others take a prefix of it
            t0 = time.perf_counter()
            fitted[transform], _ = fit_linear_code(train, LinearCodeConfig((3, 32, 32), (512,), transform=transform))
            print(f"fitted {transform} on {len(train)} images in {time.perf_counter() - t0:.0f} s", flush=True)
        base = fitted[transform]
        code = LinearAnalogCode(LinearCodeConfig((3, 32, 32), layers, transform, allocation, design, power))
        code.set_transform(base.mean, base.basis, base.lam)
        means, pooled = _score(code, test, snrs)
        rows.append({"layers": list(layers), "transform": transform, "allocation": allocation,
                     "design_snr_db": "test SNR" if design is None else design, "power": power,
                     "psnr_db": means, "psnr_pooled_db": pooled})
        print(rows[-1], flush=True)
    path = write_json("linear_analog", {
        "command": " ".join(["python bench/bench_linear_analog.py", *(argv if argv is not None else sys.argv[1:])]),
        "dataset": "cifar10 (JPEG-75 development copy)", "fit_images": len(train), "test_images": len(test),
        "snr_db": snrs, "channel": "awgn", "rows": rows})
    print("| symbols per layer | transform | allocation | designed for | power | "
          + " | ".join(f"{s:g} dB" for s in snrs) + " |")
    print("|---|---|---|---|---|" + "---|" * len(snrs))
    for r in rows:
        design = r["design_snr_db"] if isinstance(r["design_snr_db"], str) else f"{r['design_snr_db']:g} dB"
        alloc_design = "-" if r["allocation"] == "softcast" else design
        print(f"| {'/'.join(map(str, r['layers']))} | {r['transform']} | {r['allocation']} | {alloc_design} | "
              f"{r['power']} | " + " | ".join(f"{v:.2f}" for v in r["psnr_db"]) + " |")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
