"""Benchmark of the semantic receivers on a frozen zoo JSCC encoder (not a test).

Trains every receiver (and the per-layer heads under every weighting strategy) on the frozen
encoder of a zoo model over AWGN at SNRs drawn uniformly from 0-20 dB, then evaluates per layer
at a few SNRs on AWGN and, for the unseen-channel study, on Rayleigh block fading (one gain per
image, perfect CSI, LMMSE symbol estimates). Writes JSON (``--out``) and prints Markdown tables;
``--table FILE`` only prints the tables of an existing JSON file. The JSON holds one entry per
dataset; ``--merge`` replaces only the runs being re-run (and keeps each command in ``commands``).

    python bench/bench_receivers.py --data-root DATA --threads 1
    python bench/bench_receivers.py --table bench/results/receivers.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import add_output_options, add_seed_options, command_line, run_or_table, seed_cell

# (receiver, weighting, test channels, side SNR told to the receiver)
PLAN: list[tuple[str, str, tuple[str, ...]] | tuple[str, str, tuple[str, ...], str]] = [
    ("per-layer-heads", "equal", ("awgn", "rayleigh")),
    ("per-layer-heads", "uncertainty", ("awgn",)),
    ("per-layer-heads", "gradnorm", ("awgn",)),
    ("per-layer-heads", "pcgrad", ("awgn",)),
    ("per-layer-heads", "mgda-ub", ("awgn",)),
    ("deep-supervision", "equal", ("awgn",)),
    ("top-only", "equal", ("awgn",)),
    ("all-at-top", "equal", ("awgn",)),
    ("proxy-softmax", "equal", ("awgn", "rayleigh")),
    ("proxy-uncertainty", "equal", ("awgn", "rayleigh")),
    ("per-layer-heads", "equal", ("awgn", "rayleigh"), "effective"),
]


def _jscc_reference(
    model: Any, dataset: Any, snrs: list[float], channel: str, seed: int,
) -> list[dict[str, Any]]:
    """The zoo model's own decoders D_r (image + semantic head), for reference: every SNR's channel
    starts at ``seed``, as in :func:`semcom.receivers.evaluate_receiver`."""
    from semcom.channels import build_channel
    from semcom.evaluation import StreamPerSnr, evaluate_system
    from semcom.jscc.system import JsccSystem
    from semcom.metrics import accuracy
    from semcom.receivers import expected_calibration_error

    result = evaluate_system(JsccSystem(model), dataset, build_channel(channel, block="image", csi="perfect"), snrs,
                             batch_size=500, seeds=StreamPerSnr(seed, step=0), keep_logits=True)
    rows = []
    for i, snr in enumerate(result.snr_db):
        for r, collected in enumerate(result.layers[i], start=1):
            p = collected.psnr_values()
            row = {"snr_db": snr, "layer": r, "images": len(dataset), "psnr_db": float(p.mean()),
                   "psnr_std": float(p.std())}
            logits = collected.logits()
            if logits.numel():
                row["accuracy"] = accuracy(logits, dataset.labels)
                row["ece"] = expected_calibration_error(logits, dataset.labels)
            rows.append(row)
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    from semcom.data import load_dataset
    from semcom.receivers import evaluate_receiver, load_encoder, train_receiver
    from semcom.receivers.checkpoint import model_sha256

    model_name = args.model or f"{args.dataset}-mr3-awgn"
    encoder = load_encoder(model_name)
    train = load_dataset(args.dataset, "train", root=args.data_root, subset=args.train_subset)
    test = load_dataset(args.dataset, "test", root=args.data_root, subset=args.test_subset)
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"datasets": {}}
    if args.merge and out_path.exists():
        doc = json.loads(out_path.read_text())
    previous = doc["datasets"].get(args.dataset, {"meta": {}, "runs": []})
    command = command_line(hide_data_root=False)
    plan = [p for p in PLAN if _selected(p, args.only)]
    rerun = {(p[0], p[1], p[3] if len(p) > 3 else "nominal") for p in plan}  # type: ignore[misc]
    kept = [r for r in previous["runs"]
            if (r["receiver"], r["weighting"], r.get("side_snr", "nominal")) not in rerun
            and not (args.reference and r["receiver"] == "jscc-decoders")]
    result: dict[str, Any] = {
        "meta": {
            "commands": [*previous["meta"].get("commands", []), command],
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} CPU, {args.threads} torch thread(s), shared 2-core host, "
                       "no GPU",
            "torch": torch.__version__, "model": model_name,
            "model_sha256": model_sha256(model_name),  # the encoder the receivers read
            "dataset": args.dataset,
            "train_images": len(train), "test_images": len(test), "epochs": args.epochs,
            "batch_size": args.batch_size, "lr": args.lr, "width": args.width,
            "train_channel": "awgn", "train_snr_db": [0.0, 20.0], "test_snrs_db": args.snrs,
            "rayleigh": "block fading, one h ~ CN(0,1) per image, perfect CSI, LMMSE estimate",
            "seeds": args.seeds,
        },
        "runs": kept,
    }
    doc["datasets"][args.dataset] = result
    if args.reference:
        for ch in ("awgn", "rayleigh"):
            rows = _jscc_reference(encoder, test, args.snrs, ch, 1234)
            result["runs"].append({"receiver": "jscc-decoders", "weighting": "-", "seed": 0,
                                   "test_channel": ch, "train_seconds": 0.0, "rows": rows})
    for name, weighting, channels, *rest in plan:
        side = rest[0] if rest else "nominal"
        for seed in args.seeds:
            t0 = time.perf_counter()
            trained = train_receiver(name, encoder, train, weighting=weighting, epochs=args.epochs,
                                     batch_size=args.batch_size, lr=args.lr, seed=seed,
                                     receiver_kwargs={"width": args.width}, side_snr=side)
            seconds = time.perf_counter() - t0
            for ch in channels:
                rows = evaluate_receiver(trained, test, args.snrs, channel=ch, seed=1234 + seed)
                result["runs"].append({"receiver": name, "weighting": weighting, "seed": seed,
                                       "side_snr": side, "test_channel": ch,
                                       "train_seconds": round(seconds, 1), "rows": rows})
            print(f"{name}/{weighting}/{side} seed {seed}: {seconds:.0f} s", file=sys.stderr, flush=True)
            out_path.write_text(json.dumps(doc, indent=1))
    out_path.write_text(json.dumps(doc, indent=1))
    return doc


def _selected(entry: tuple[Any, ...], only: list[str] | None) -> bool:
    if not only:
        return True
    side = entry[3] if len(entry) > 3 else "nominal"
    return any(o in (entry[0], f"{entry[0]}/{entry[1]}", f"{entry[0]}/{entry[1]}/{side}") for o in only)


def tables(doc: dict[str, Any]) -> str:
    """Markdown tables per dataset: mean over seeds, ± half the range between seeds."""
    return "\n".join(f"### {name}\n\n" + _tables(result) for name, result in doc["datasets"].items())


def _tables(result: dict[str, Any]) -> str:
    meta = result["meta"]
    snrs = meta["test_snrs_db"]
    # (receiver/weighting, channel) -> (snr, layer, metric) -> [values over seeds]
    agg: dict[tuple[str, str], dict[tuple[float, int, str], list[float]]] = defaultdict(
        lambda: defaultdict(list))
    order: list[str] = []
    for run in result["runs"]:
        key = run["receiver"]
        if run["weighting"] not in ("equal", "-"):
            key = f"{key} + {run['weighting']}"
        if run.get("side_snr", "nominal") != "nominal":
            key = f"{key} ({run['side_snr']} SNR)"
        if key not in order:
            order.append(key)
        for row in run["rows"]:
            for metric in ("accuracy", "coarse_accuracy", "ece", "psnr_db", "snr_mae_db"):
                if metric in row:
                    agg[(key, run["test_channel"])][(row["snr_db"], row["layer"], metric)].append(row[metric])
    layers = sorted({row["layer"] for run in result["runs"] for row in run["rows"]})
    out = []

    def table(title: str, channel: str, metric: str, scale: float, digits: int, names: list[str]) -> None:
        head = [f"{s:g} dB L{r}" for s in snrs for r in layers]
        lines = [f"**{title}**", "", "| method | " + " | ".join(head) + " |",
                 "|---|" + "---|" * len(head)]
        for name in names:
            d = agg.get((name, channel))
            if not d or not any(k[2] == metric for k in d):
                continue
            cells = [seed_cell(d.get((float(s), r, metric), []), scale, digits) for s in snrs for r in layers]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("\n".join(lines) + "\n")

    table("Top-1 accuracy (%), AWGN (train and test)", "awgn", "accuracy", 100, 1, order)
    table("Coarse-concept accuracy (%), AWGN (coarse head where there is one, else class probabilities "
          "summed per group)", "awgn", "coarse_accuracy", 100, 1, order)
    table("Reconstruction PSNR (dB), AWGN", "awgn", "psnr_db", 1, 2, order)
    table("Top-1 accuracy (%), Rayleigh block fading (unseen: trained on AWGN)", "rayleigh", "accuracy",
          100, 1, order)
    table("ECE (%), AWGN", "awgn", "ece", 100, 1, [n for n in order if (n, "rayleigh") in agg])
    table("ECE (%), Rayleigh (unseen)", "rayleigh", "ece", 100, 1, order)
    table("SNR-estimate mean abs. error (dB), AWGN", "awgn", "snr_mae_db", 1, 2, order)
    table("SNR-estimate mean abs. error (dB), Rayleigh (effective SNR incl. |h|^2)", "rayleigh",
          "snr_mae_db", 1, 2, order)
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="zoo name or checkpoint (default DATASET-mr3-awgn)")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--train-subset", type=int, default=None)
    ap.add_argument("--test-subset", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--snrs", type=float, nargs="+", default=[0.0, 10.0, 20.0])
    add_seed_options(ap, [0])
    ap.add_argument("--only", nargs="*", default=None, help="receiver names or receiver/weighting pairs")
    ap.add_argument("--no-reference", dest="reference", action="store_false",
                    help="skip the zoo model's own decoders")
    add_output_options(ap, "bench/results/receivers.json", merge="keep the other runs already in --out")
    run_or_table(ap.parse_args(), run, tables)


if __name__ == "__main__":
    main()
