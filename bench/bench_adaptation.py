"""Benchmark of source-free adaptation to a new channel (not a test).

Per seed: trains the per-layer heads on the frozen encoder of a zoo model over AWGN (the source
receiver) and, for the upper reference, the same receiver with labels on the target channel; sends
other training images once through the target channel (the unlabeled target receptions); adapts the
source receiver to them (:func:`semcom.receivers.adaptation.adapt_receiver`) in each variant; tests
every receiver on the target channel (test split, each seed's channel draws shared by all methods).
Also records the fading-gain oracle of the variance direction and the source receiver's accuracy on
each half of the variance ranking (labels read for that report only, after adaptation). Writes JSON
(``--out``) and prints Markdown tables; ``--table FILE`` only prints the tables of an existing file;
``--merge`` keeps the seeds already in ``--out`` that are not re-run.

    python bench/bench_adaptation.py --data-root DATA --seeds 0 1 2 --threads 1
    python bench/bench_adaptation.py --table bench/results/adaptation.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import add_output_options, add_seed_options, command_line, run_or_table

# variant name -> adapt_receiver options over the defaults
VARIANTS: dict[str, dict[str, Any]] = {
    "adapted": {},
    "no-adversarial": {"adversarial_weight": 0.0},
    "random-split": {"split": "random"},
    "strong-adversarial": {"adversarial_weight": 1.0},
    "reversed-split": {"source_like": "reversed"},  # the end the oracle did not pick
    "symmetric": {"anchor": False},
}
DEFAULT_VARIANTS = ["adapted", "no-adversarial", "random-split", "strong-adversarial"]


def _evaluate(receiver: Any, encoder: Any, test: Any, args: argparse.Namespace, seed: int) -> list[dict[str, Any]]:
    from semcom.receivers import TrainedReceiver, evaluate_receiver, make_weighting

    run = TrainedReceiver(receiver, make_weighting("equal", receiver.tasks), encoder, {"side_snr": "nominal"})
    return evaluate_receiver(run, test, args.test_snrs, channel=args.channel, seed=1234 + seed)


GAIN_BINS_DB = (-float("inf"), -10.0, -5.0, -2.0, 2.0, 5.0, float("inf"))


def _by_gain(gain: Any, variance: Any, right: Any, high: Any) -> list[dict[str, Any]]:
    """Per bin of 10 log10 |h|^2: receptions, mean variance, share in the high-variance half, source accuracy."""
    import torch

    db = 10 * torch.log10(gain.clamp_min(1e-12))
    rows = []
    for lo, hi in itertools.pairwise(GAIN_BINS_DB):
        sel = (db >= lo) & (db < hi)
        if not bool(sel.any()):
            continue
        rows.append({"gain_db": [lo, hi], "receptions": int(sel.sum()), "variance": float(variance[sel].mean()),
                     "high_variance_share": float(high[sel].float().mean()),
                     "source_accuracy": float(right[sel].mean())})
    return rows


def run_seed(seed: int, args: argparse.Namespace, encoder: Any, train: Any, target: Any, test: Any) -> dict[str, Any]:
    import torch

    from semcom.receivers import train_receiver
    from semcom.receivers.adaptation import adapt_receiver, target_receptions

    common = {"epochs": args.epochs, "batch_size": 128, "seed": seed, "receiver_kwargs": {"width": args.width}}
    t0 = time.perf_counter()
    source = train_receiver("per-layer-heads", encoder, train, channel="awgn", snr_db=tuple(args.source_snr), **common)
    reference = train_receiver("per-layer-heads", encoder, train, channel=args.channel, snr_db=tuple(args.target_snr),
                               **common)
    out: dict[str, Any] = {"seed": seed, "train_seconds": round(time.perf_counter() - t0, 1), "methods": {}}
    out["methods"]["source"] = {"rows": _evaluate(source.receiver, encoder, test, args, seed)}
    out["methods"]["reference"] = {"rows": _evaluate(reference.receiver, encoder, test, args, seed)}
    receptions = target_receptions(encoder, target, args.channel, tuple(args.target_snr), seed=1000 + seed)
    chosen = None
    for name in args.variants:
        options = dict(VARIANTS[name])
        if options.get("source_like") == "reversed":
            if chosen is None:
                raise SystemExit("reversed-split needs a variance-split variant before it in --variants")
            options["source_like"] = "low-variance" if chosen == "high-variance" else "high-variance"
        t0 = time.perf_counter()
        res = adapt_receiver(source.receiver, receptions, epochs=args.adapt_epochs, seed=seed, **options)
        seconds = time.perf_counter() - t0
        if res.source_like_from != "random split" and chosen is None:
            chosen = res.source_like
            # the source receiver's accuracy on each half of the variance ranking (labels: report only)
            with torch.no_grad():
                pred = source.receiver.predict(receptions.received())[f"class@{source.receiver.num_layers}"].argmax(1)
            right = (pred == target.labels).float()
            low = torch.zeros_like(res.source_similar)
            low[torch.sort(res.variance, stable=True).indices[: len(low) // 2]] = True
            out["oracle"] = res.oracle
            out["source_like"] = res.source_like
            out["source_accuracy_low_variance_half"] = float(right[low].mean())
            out["source_accuracy_high_variance_half"] = float(right[~low].mean())
            out["by_gain"] = _by_gain(receptions.gain, res.variance, right, ~low)
        out["methods"][name] = {"rows": _evaluate(res.receiver, encoder, test, args, seed),
                                "student_rows": _evaluate(res.student, encoder, test, args, seed),
                                "options": res.config.to_flat(), "source_like": res.source_like,
                                "source_like_from": res.source_like_from, "history": res.history,
                                "seconds": round(seconds, 1)}
        print(f"seed {seed} {name}: {seconds:.0f} s", file=sys.stderr, flush=True)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    from semcom.data import load_dataset
    from semcom.receivers import load_encoder
    from semcom.receivers.checkpoint import model_sha256

    encoder = load_encoder(args.model)
    full = load_dataset(args.dataset, "train", root=args.data_root)
    index = torch.arange(len(full))
    train = full.subset(args.source_images)
    if args.target_start < args.source_images:
        raise SystemExit("--target-start must leave the source receiver's training images out")
    target = full.subset(keep=(index >= args.target_start) & (index < args.target_start + args.target_images))
    test = load_dataset(args.dataset, "test", root=args.data_root, subset=args.test_images)
    out_path = Path(args.out)
    whole: dict[str, Any] = {"experiments": {}}
    if args.merge and out_path.exists():
        whole = json.loads(out_path.read_text())
    name = experiment_name(args.channel, args.target_snr)
    previous = whole["experiments"].get(name, {})
    command = command_line(hide_data_root=False)
    doc: dict[str, Any] = {
        "meta": {
            "commands": [*previous.get("meta", {}).get("commands", []), command],
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} CPU, {args.threads} torch thread(s), shared 2-core host, no GPU",
            "torch": torch.__version__, "model": args.model, "model_sha256": model_sha256(args.model),
            "dataset": args.dataset, "receiver": "per-layer-heads", "width": args.width,
            "source": {"channel": "awgn", "snr_db": args.source_snr, "images": len(train), "epochs": args.epochs},
            "reference": {"channel": args.channel, "snr_db": args.target_snr, "images": len(train),
                          "epochs": args.epochs, "labels": True},
            "target": {"channel": args.channel, "block": "image", "csi": "perfect", "snr_db": args.target_snr,
                       "images": len(target), "first_image": args.target_start, "labels": False},
            "adapt_epochs": args.adapt_epochs, "test_images": len(test), "test_snrs_db": args.test_snrs,
            "variants": {v: VARIANTS[v] for v in args.variants},
        },
        "seeds": [s for s in previous.get("seeds", []) if s["seed"] not in args.seeds],
    }
    whole["experiments"][name] = doc
    for seed in args.seeds:
        doc["seeds"].append(run_seed(seed, args, encoder, train, target, test))
        doc["seeds"].sort(key=lambda s: s["seed"])
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(whole, indent=1))
    return whole


def experiment_name(channel: str, target_snr: list[float]) -> str:
    """The key of one target setting in the JSON file: ``rayleigh -5..5 dB``."""
    return f"{channel} {target_snr[0]:g}..{target_snr[1]:g} dB"


def _cell(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    if not values:
        return "—"
    m = statistics.fmean(values) * scale
    if len(values) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} [{min(values) * scale:.{digits}f}, {max(values) * scale:.{digits}f}]"


def _accuracy(seed_doc: dict[str, Any], method: str, snr: float, layer: int, rows: str = "rows") -> float | None:
    for row in seed_doc["methods"].get(method, {}).get(rows, []):
        if row["snr_db"] == snr and row["layer"] == layer:
            return float(row["accuracy"])
    return None


def tables(whole: dict[str, Any]) -> str:
    """Per target setting: accuracy per method, the fraction of the gap closed and the oracle
    (mean [min, max] over seeds)."""
    return "\n".join(f"#### Target: {name}\n\n" + _tables(doc) for name, doc in whole["experiments"].items())


def _tables(doc: dict[str, Any]) -> str:
    meta, seeds = doc["meta"], doc["seeds"]
    snrs, layers = meta["test_snrs_db"], (1, 2, 3)
    methods = ["source", *[v for v in meta["variants"]], "reference"]
    head = [f"{s:g} dB L{r}" for s in snrs for r in layers]
    out = [f"**Top-1 accuracy (%) on {meta['target']['channel']} (seeds {', '.join(str(s['seed']) for s in seeds)}; "
           "mean [min, max])**", "", "| receiver | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    for m in methods:
        cells = [_cell([a for s in seeds if (a := _accuracy(s, m, snr, r)) is not None])
                 for snr in snrs for r in layers]
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    out += ["", "**Gain over the source receiver (pp) and fraction of the gap to the reference closed (%), "
            "layers 1..3; per seed, then mean [min, max]**", "",
            "| receiver | " + " | ".join(f"{s:g} dB gain | {s:g} dB closed" for s in snrs) + " |",
            "|---|" + "---|---|" * len(snrs)]
    for m in [v for v in meta["variants"]]:
        cells = []
        for snr in snrs:
            gains, closed = [], []
            for s in seeds:
                a, src, ref = (_accuracy(s, k, snr, 3) for k in (m, "source", "reference"))
                if a is None or src is None or ref is None:
                    continue
                gains.append(a - src)
                if ref - src > 0.005:
                    closed.append((a - src) / (ref - src))
            cells += [_cell(gains, 100, 1), _cell(closed, 100, 0)]
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    out += ["", "**Variance direction against the fading-gain oracle (MC-dropout variance of the source receiver "
            "on the target receptions; distance = abs(10 log10 abs(h)^2) dB from an AWGN-like reception)**", "",
            "| seed | AUC far > near | Spearman(var, abs(h)^2) | Spearman(var, distance) | distance, low-var half "
            "(dB) | distance, high-var half (dB) | source acc. low-var half | source acc. high-var half | "
            "source-like |", "|---|---|---|---|---|---|---|---|---|"]
    for s in seeds:
        if "source_like" not in s:
            continue
        o = s.get("oracle")
        stats = ("— (no fading) | — | — | — | —" if not o else
                 f"{o['auc_far_higher_variance']:.3f} | {o['spearman_variance_gain']:+.3f} | "
                 f"{o['spearman_variance_distance']:+.3f} | {o['distance_db_low_half']:.2f} | "
                 f"{o['distance_db_high_half']:.2f}")
        out.append(f"| {s['seed']} | {stats} | {100 * s['source_accuracy_low_variance_half']:.1f} | "
                   f"{100 * s['source_accuracy_high_variance_half']:.1f} | {s['source_like']} |")
    binned = [s for s in seeds if s.get("by_gain") and s.get("oracle")]
    if binned:
        out += ["", "**Variance against the fading gain (source receiver on the target receptions; mean [min, max] "
                "over seeds)**", "", "| 10 log10 abs(h)^2 (dB) | receptions | mean variance (x1000) | share in the "
                "high-variance half (%) | source accuracy (%) |", "|---|---|---|---|---|"]
        for i, row in enumerate(binned[0]["by_gain"]):
            lo, hi = row["gain_db"]
            label = f"< {hi:g}" if lo == -float("inf") else f">= {lo:g}" if hi == float("inf") else f"{lo:g} to {hi:g}"
            per = [s["by_gain"][i] for s in binned if len(s["by_gain"]) > i]
            out.append(f"| {label} | {statistics.fmean(r['receptions'] for r in per):.0f} | "
                       f"{_cell([r['variance'] for r in per], 1000, 2)} | "
                       f"{_cell([r['high_variance_share'] for r in per], 100, 0)} | "
                       f"{_cell([r['source_accuracy'] for r in per], 100, 1)} |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mnist-mr3-awgn")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-root", default=None, help="data root (default: $SEMCOM_DATA)")
    ap.add_argument("--source-images", type=int, default=20000, help="first N train images: source and reference")
    ap.add_argument("--target-start", type=int, default=40000, help="first train image of the target receptions")
    ap.add_argument("--target-images", type=int, default=10000)
    ap.add_argument("--test-images", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=5, help="source and reference training epochs")
    ap.add_argument("--adapt-epochs", type=int, default=3)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--channel", default="rayleigh")
    ap.add_argument("--source-snr", type=float, nargs=2, default=[0.0, 20.0])
    ap.add_argument("--target-snr", type=float, nargs=2, default=[-5.0, 5.0])
    ap.add_argument("--test-snrs", type=float, nargs="+", default=[-5.0, 0.0, 5.0])
    ap.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    add_seed_options(ap, [0, 1])
    add_output_options(ap, "bench/results/adaptation.json", merge="keep the seeds already in --out that are not re-run")
    run_or_table(ap.parse_args(), run, tables)


if __name__ == "__main__":
    main()
