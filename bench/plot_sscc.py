"""Plot the SSCC cliff from bench/results/sscc_<dataset>.json.

    python bench/plot_sscc.py cifar10    # writes bench/results/sscc_cliff_cifar10.png

The figure in docs/benchmarks.md is drawn by `semcom plot` from the scenario sscc-cliff-cifar10.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent


def main(dataset: str) -> None:
    data = json.loads((ROOT / "results" / f"sscc_{dataset}.json").read_text())
    codecs = sorted({r["codec"] for r in data["rows"]})
    fig, axes = plt.subplots(1, len(codecs), figsize=(6 * len(codecs), 4.2), sharey=True, squeeze=False)
    for ax, codec in zip(axes[0], codecs, strict=True):
        for mcs in dict.fromkeys(r["mcs"] for r in data["rows"]):
            pts = [r for r in data["rows"] if r["codec"] == codec and r["mcs"] == mcs]
            style = {"color": "k", "lw": 2} if mcs == "capacity" else {"ls": "--"}
            ax.plot([r["snr_db"] for r in pts], [r["psnr_db"] for r in pts], marker=".", label=mcs, **style)
        ax.set_title(f"{codec} + 5G LDPC, {dataset}, k = {data['symbols_per_image']} symbols")
        ax.set_xlabel("SNR Es/N0 (dB)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("PSNR (dB)")
    axes[0][-1].legend(fontsize=8, ncol=2)
    fig.tight_layout()
    out = ROOT / "results" / f"sscc_cliff_{dataset}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cifar10")
