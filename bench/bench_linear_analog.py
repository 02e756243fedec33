"""Reference point for the JSCC zoo: the best *linear* analog code at the same bandwidth.

Each image is cut into b x b blocks (all colour channels together, d = 3 b^2 values); a PCA fitted
on training blocks keeps the first ``k = d * 2 * rho`` components (rho = 1/6: a third of them, so
the same 512 complex symbols per CIFAR-10 image as the zoo). Component i is sent with gain g_i, two
reals per complex symbol, through semcom's AWGN channel (Sionna) at SNR = Es/N0 per complex symbol,
and estimated by LMMSE, ``c_hat = g lam y / (g^2 lam + N0/2)``. The gains minimise the MSE under the
average power budget, which gives the linear-analog allocation
``g_i^2 lam_i = max(0, sqrt(lam_i N0' / mu) - N0')`` (N0' = N0/2 per real, mu set by the budget;
the analog scheme of "SoftCast: One-Size-Fits-All Wireless Video", Jakubczak and Katabi, 2010).

The development copy of CIFAR-10 is JPEG-75: its 8x8 DCT blocks start at pixel 0, so a block code on
the same grid finds each block near a low-dimensional subspace, an edge no official-CIFAR-10 result
would show. ``--offsets`` moves the block grid (cyclically, both axes) to
show the code off that grid too; the official CIFAR-10 has no such grid.

Two allocations: designed for each test SNR (an encoder that knows the SNR) and one designed for
10 dB used at every SNR (an SNR-agnostic encoder, like the zoo's). Power is an average over the
images, not normalised per image as the JSCC layers are; the block mean and the PCA basis are known
to both ends.

    python bench/bench_linear_analog.py --cifar-root ~/.cache/semcom-data

The JSCC models normalise each layer's power *per image*, which hides each image's gain ``s`` from
the receiver. ``--per-image`` adds rows for the 4x4 grid (the JSCC latent grid) with that
normalisation and the 10 dB allocation: the receiver knows ``s`` (an oracle), is blind to it (uses
the mean gain), or reads it off a pilot, the last complex symbol set to a constant ``c`` before the
normalisation (about 2% of the power; ``s_hat = Re(y_pilot) / c``), as ``--gain-pilot`` does in the
JSCC models.

Writes ``bench/results/linear_analog.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from _common import write_json

from semcom.channels import build_channel
from semcom.data import load_dataset
from semcom.metrics import psnr


def _blocks(x: torch.Tensor, b: int) -> torch.Tensor:
    """Images ``[N, C, H, W]`` -> blocks ``[N, H/b * W/b, C b^2]`` (float64)."""
    u = torch.nn.functional.pixel_unshuffle(x, b)
    return u.flatten(2).transpose(1, 2).double()


def _images(blocks: torch.Tensor, b: int, shape: tuple[int, ...]) -> torch.Tensor:
    n, c, h, w = shape
    u = blocks.transpose(1, 2).reshape(n, c * b * b, h // b, w // b).float()
    return torch.nn.functional.pixel_shuffle(u, b)


def allocate(lam: np.ndarray, noise_per_real: float, budget: float) -> np.ndarray:
    """Powers ``p_i = g_i^2 lam_i`` minimising the LMMSE error with ``sum p_i = budget``."""
    lo, hi = 1e-18, 1e12
    for _ in range(300):
        mu = np.sqrt(lo * hi)
        p = np.maximum(0.0, np.sqrt(lam * noise_per_real / mu) - noise_per_real)
        lo, hi = (mu, hi) if p.sum() > budget else (lo, mu)
    return p * (budget / max(p.sum(), 1e-30))


def _append_psnr(
    row: dict, est: torch.Tensor, basis: torch.Tensor, mean: torch.Tensor, b: int, ref: torch.Tensor
) -> None:
    """Rebuild the images from estimated coefficients ``[N, blocks, k]`` and add their PSNR to ``row``."""
    rec = _images(est @ basis.T + mean, b, tuple(ref.shape)).clamp(0, 1)
    v = psnr(ref, rec).double()
    row["psnr_db"].append(round(float(v.mean()), 3))
    row["psnr_std_db"].append(round(float(v.std()), 3))


def _per_image_rows(
    coef: torch.Tensor,
    g: torch.Tensor,
    lam: torch.Tensor,
    basis: torch.Tensor,
    mean: torch.Tensor,
    test: torch.Tensor,
    snrs: list[float],
    seed: int,
) -> list[dict]:
    """PSNR of the 4x4 code with per-image power normalisation: gain known, blind, or sent by a pilot."""
    n, nb, k = coef.shape
    tx = (coef * g).reshape(n, -1)
    reals = tx.shape[1]
    pilot_amp = float(np.sqrt(0.02 * tx.square().sum(1).mean()))  # ~2% of the power before normalising
    rows = []
    for mode in ("gain known", "gain unknown (mean gain)", "gain pilot"):
        row = {"block": 4, "offset": 0, "reals_per_block": k, "allocation": "10 dB", "power": f"per image, {mode}"}
        row.update(psnr_db=[], psnr_std_db=[])
        sent = tx.clone()
        if mode == "gain pilot":
            sent[:, -2:] = torch.tensor([pilot_amp, 0.0], dtype=sent.dtype)  # the last complex symbol
        s = torch.sqrt(0.5 * reals / sent.square().sum(1, keepdim=True))  # unit power per complex symbol
        for si, snr in enumerate(snrs):
            n_real = 0.5 * 10 ** (-snr / 10)
            x = torch.view_as_complex((sent * s).float().reshape(n, -1, 2).contiguous())
            y = torch.view_as_real(build_channel("awgn", seed=seed + si)(x, snr).y).reshape(n, -1).double()
            if mode == "gain known":
                s_hat = s
            elif mode == "gain pilot":
                s_hat = (y[:, -2:-1] / pilot_amp).clamp_min(0.02 * s.mean())
            else:
                s_hat = s.mean().expand_as(s)
            yy = (y / s_hat).reshape(n, nb, k)
            noise = (n_real / s_hat.square()).reshape(n, 1, 1)
            est = yy * g * lam / (g * g * lam + noise)
            if mode == "gain pilot":
                est = est.reshape(n, -1)
                est[:, -2:] = 0.0  # those two components were not sent: their mean
                est = est.reshape(n, nb, k)
            _append_psnr(row, est, basis, mean, 4, test)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cifar-root", default=str(Path.home() / ".cache" / "semcom-data"))
    ap.add_argument("--blocks", default="4,8", help="block sizes b")
    ap.add_argument("--offsets", default="0,4", help="block-grid offsets in pixels (0: the JPEG grid)")
    ap.add_argument("--rho", default="1/6")
    ap.add_argument("--fit-count", type=int, default=10000, help="training images for the PCA")
    ap.add_argument("--count", type=int, default=10000, help="test images")
    ap.add_argument("--snrs", default="0,5,10,15,20")
    ap.add_argument("--design-snr", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-image", action="store_true", help="also per-image power rows (4x4 grid, offset 0)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    snrs = [float(s) for s in args.snrs.split(",")]
    train = load_dataset("cifar10", "train", root=args.cifar_root).images(slice(0, args.fit_count))
    test = load_dataset("cifar10", "test", root=args.cifar_root).images(slice(0, args.count))
    rho = Fraction(args.rho)
    rows = []
    grids = [(int(b), int(o)) for b in args.blocks.split(",") for o in args.offsets.split(",") if int(o) < int(b)]
    for b, off in grids:
        train_b, test_b = (torch.roll(x, (off, off), (2, 3)) for x in (train, test))
        d = test.shape[1] * b * b
        k = int(d * 2 * rho)  # reals kept per block
        fit = _blocks(train_b, b).reshape(-1, d)
        mean = fit.mean(0)
        lam_all, vecs = torch.linalg.eigh(torch.cov((fit - mean).T))
        basis = vecs.flip(1)[:, :k]
        lam = lam_all.flip(0)[:k].clamp_min(1e-12).numpy()
        coef = (_blocks(test_b, b) - mean) @ basis  # [N, blocks, k]
        budget = 0.5 * k  # unit power per complex symbol = 0.5 per real
        lam_t = torch.from_numpy(lam)
        fixed = allocate(lam, 0.5 * 10 ** (-args.design_snr / 10), budget)  # the SNR-agnostic encoder
        for design in ("test SNR", f"{args.design_snr:g} dB"):
            row = {"block": b, "offset": off, "reals_per_block": k, "allocation": design}
            row.update(psnr_db=[], psnr_std_db=[])
            for si, snr in enumerate(snrs):
                n_real = 0.5 * 10 ** (-snr / 10)
                p = allocate(lam, n_real, budget) if design == "test SNR" else fixed
                g = torch.from_numpy(np.sqrt(p / lam))
                tx = (coef * g).reshape(coef.shape[0], -1).float()  # [N, reals]
                ch = build_channel("awgn", seed=args.seed + si)
                x = torch.view_as_complex(tx.reshape(tx.shape[0], -1, 2).contiguous())
                y = torch.view_as_real(ch(x, snr).y).reshape(coef.shape).double()
                est = y * g * lam_t / (g * g * lam_t + n_real)
                _append_psnr(row, est, basis, mean, b, test_b)
            rows.append(row)
        if args.per_image and (b, off) == (4, 0):
            gains = torch.from_numpy(np.sqrt(fixed / lam))
            rows += _per_image_rows(coef, gains, lam_t, basis, mean, test, snrs, args.seed)
    meta = {
        "dataset": "cifar10 (JPEG-75 development copy)",
        "fit_images": len(train),
        "test_images": len(test),
        "rho": str(rho),
        "snr_db": snrs,
        "power": "average over images, except in rows whose 'power' says per image",
        "command": " ".join(["python bench/bench_linear_analog.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    path = write_json("linear_analog", {**meta, "rows": rows})
    print("| block | grid offset | allocation designed for | power | " + " | ".join(f"{s:g} dB" for s in snrs) + " |")
    print("|---|---|---|---|" + "---|" * len(snrs))
    for r in rows:
        cells = " | ".join(f"{v:.2f}" for v in r["psnr_db"])
        power = r.get("power", "average over images")
        print(f"| {r['block']}x{r['block']} | {r['offset']} | {r['allocation']} | {power} | {cells} |")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
