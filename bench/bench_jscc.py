"""Benchmark the JSCC zoo: per-layer PSNR and accuracy vs SNR, inference speed, training time.

Writes ``bench/results/jscc_quality.json`` and prints Markdown tables for docs/benchmarks.md.

    python bench/bench_jscc.py --mnist-root DATA --cifar-root DATA
    python bench/bench_jscc.py --models mnist-mr3-awgn --count 2000
    python bench/bench_jscc.py --models none --checkpoints "djscc v4=runs/cifar10-djscc-awgn-v4/best.safetensors"

Quality: each model on its dataset's test split (first ``--count`` images, or all), through the
channel it was trained for (AWGN, or Rayleigh with one gain per image and perfect CSI), at each SNR;
one fixed channel seed per SNR. Speed: images/s for encode + channel + all L decoders (batch 256,
``--threads`` CPU threads, no autograd), median of ``--repeats`` timed batches after a warm-up.
Training time per epoch is read from each card (measured while training, on a shared CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from semcom.channels import build_channel
from semcom.data import load_dataset
from semcom.jscc.checkpoint import epochs_label, load_checkpoint
from semcom.jscc.train import evaluate
from semcom.jscc.zoo import load_model
from semcom.zoo import list_models


def _channel_for(card: dict, seed: int = 0):
    ch = card["channel"]
    return build_channel(
        ch["name"],
        block=ch.get("block", "image"),
        csi=ch.get("csi", "perfect"),
        seed=seed,
        k_factor=ch.get("k_factor", 1.0) if ch["name"] == "rician" else None,
    )


@torch.no_grad()
def _speed(model, shape, channel, batch: int, repeats: int) -> float:
    x = torch.rand(batch, *shape)
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        model(x, channel, 10.0)
        if i:  # first call is the warm-up
            times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def _monotone(rows: list[list[float]]) -> bool:
    """True when every layer beats the one before at every SNR (rows: layer -> per SNR)."""
    return all(b >= a for r in range(1, len(rows)) for a, b in zip(rows[r - 1], rows[r], strict=True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="", help="comma-separated zoo names (default: all; none: no zoo model)")
    ap.add_argument(
        "--checkpoints", default="", help="'label=path,...': also training-run checkpoints (card: path.json)"
    )
    ap.add_argument("--snrs", default="0,5,10,15,20")
    ap.add_argument("--count", type=int, default=0, help="test images per model (0: the whole test split)")
    ap.add_argument("--mnist-root", default=os.environ.get("SEMCOM_DATA"),
                    help="data root holding mnist/ (default: $SEMCOM_DATA)")
    ap.add_argument("--cifar-root", default=os.environ.get("SEMCOM_DATA"),
                    help="data root holding cifar-10-batches-bin/ (default: $SEMCOM_DATA)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="bench/results/jscc_quality.json")
    ap.add_argument("--skip-quality", action="store_true", help="only measure speed")
    ap.add_argument("--skip-speed", action="store_true", help="only measure quality")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    snrs = [float(s) for s in args.snrs.split(",")]
    wanted = [m for m in args.models.split(",") if m]
    entries = [
        (e.name, e.card, lambda e=e: load_model(e.name), e.size_bytes)
        for e in list_models()
        if e.available and (not wanted or e.name in wanted)
    ]
    for item in filter(None, args.checkpoints.split(",")):
        label, path = item.split("=", 1)
        card = json.loads(Path(path).with_suffix(".json").read_text())
        entries.append((label, card, lambda p=path: load_checkpoint(p).eval(), Path(path).stat().st_size))
    roots = {"mnist": args.mnist_root, "cifar10": args.cifar_root}
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads "
        "(2-core machine shared with other jobs)",
        "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "torch": torch.__version__,
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        "models": {},
    }
    for name, card, load, size_bytes in entries:
        model = load()
        ds_name = card["dataset"]["name"]
        row: dict = {
            "size_bytes": size_bytes,
            "parameters": card.get("parameters"),
            "epochs": epochs_label(card),
            "layer_symbols": card["layer_symbols"],
            "channel": card["channel"],
            "train_seconds_per_epoch": card.get("seconds_per_epoch"),
            "train_threads": card.get("train_config", {}).get("threads"),
        }
        channel = _channel_for(card)
        if not args.skip_speed:
            row["images_per_s"] = round(_speed(model, model.config.image_shape, channel, 256, args.repeats), 1)
            row["load_average_during_speed"] = round(os.getloadavg()[0], 2)
        if not args.skip_quality:
            test = load_dataset(ds_name, "test", root=roots.get(ds_name))
            if args.count:
                test = test.subset(min(args.count, len(test)))
            t0 = time.perf_counter()
            q = evaluate(model, test, channel, snrs)
            row["eval_seconds"] = round(time.perf_counter() - t0, 1)
            row["test"] = {**q, "dataset": ds_name, "split": "test"}
            row["psnr_rises_with_layers"] = _monotone(q["psnr_db"])
            row["accuracy_rises_with_layers"] = _monotone(q["accuracy"]) if q["accuracy"] else None
            if ds_name == "mnist":
                sample = load_dataset("mnist-sample", "test")
                if args.count:
                    sample = sample.subset(min(args.count, len(sample)))
                row["mnist_sample"] = evaluate(model, sample, _channel_for(card), snrs)
        report["models"][name] = row
        print(f"{name}: {json.dumps({k: v for k, v in row.items() if k != 'mnist_sample'})}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():  # keep other models' rows from earlier runs
        old = json.loads(out.read_text())
        merged = old.get("models", {})
        for name, row in report["models"].items():
            merged[name] = {**merged.get(name, {}), **row}
        report["models"] = merged
        report["commands"] = [*old.get("commands", [old.get("command")]), report["command"]]
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return 0


def markdown(report: dict) -> str:
    """Markdown tables of a report: one per model, rows = layers, columns = SNRs."""
    lines = []
    for name, row in report["models"].items():
        if "test" not in row:
            continue
        t = row["test"]
        lines.append(
            f"\n**{name}** ({t['dataset']} test, {t['count']} images, {row['channel']['name']}, "
            f"{row['epochs']} epochs; symbols {row['layer_symbols']}; {row.get('images_per_s', '?')} img/s)\n"
        )
        lines.append("| layers received | " + " | ".join(f"{s:g} dB" for s in t["snr_db"]) + " |")
        lines.append("|---|" + "---|" * len(t["snr_db"]))
        for r, ps in enumerate(t["psnr_db"]):
            acc = t["accuracy"][r] if t["accuracy"] else [None] * len(ps)
            cells = [
                f"{p:.2f} dB / {100 * a:.1f}%" if a is not None else f"{p:.2f} dB" for p, a in zip(ps, acc, strict=True)
            ]
            lines.append(f"| 1..{r + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
