"""Benchmark of the controllable (slimmable) receiver on a frozen zoo JSCC encoder (not a test).

For each distillation weight (default 1 and 0: with and without the configuration-invariant
distillation loss) and each seed, trains a ``slimmable`` receiver on the frozen encoder over AWGN at
SNRs drawn uniformly from 0-20 dB, then measures every configuration of its grid on the same test
receptions (AWGN at ``--snr`` dB, one channel draw seeded 1234 shared by all runs). Then it plays a
grid of user requests (FLOPs budgets x task preferences) through the search and reads each chosen
configuration's accuracy and PSNR off that table, and reports:

* whether every request's FLOPs stay within its budget;
* Spearman's rank correlation between a task's preference share (``w_task / sum w``) and its
  metric over all requests (class: accuracy, image: PSNR), per run;
* with vs without the distillation loss, paired by seed, on every configuration.

Writes JSON (``--out``) and prints Markdown tables; ``--table FILE`` only prints the tables.

    SEMCOM_DATA=DATA python bench/bench_slimmable.py --threads 1
    python bench/bench_slimmable.py --table bench/results/slimmable.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import add_output_options, command_line, run_or_table, seed_cell

# (class weight, image weight) of the requests
PREFERENCES = [(1, 0), (4, 1), (2, 1), (1, 1), (1, 2), (1, 4), (0, 1)]
PRIORITIES = ("decoders", "trunk")  # the searches compared (semcom.receivers.slimmable.PRIORITIES)


def _ranks(values: list[float]) -> list[float]:
    """Ranks 1..n, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman's rank correlation (Pearson's on mid-ranks); NaN when one side is constant."""
    rx, ry = _ranks(x), _ranks(y)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else math.nan


def measure_all(receiver: Any, rx: Any, labels: Any, images: Any, batch: int = 1000) -> list[dict[str, Any]]:
    """Accuracy and mean per-image PSNR of every configuration on the same receptions."""
    import torch

    from semcom.metrics import psnr
    from semcom.receivers.base import Received

    receiver.eval()
    rows = []
    with torch.no_grad():
        for config in receiver.configurations():
            hits, psnrs = [], []
            for start in range(0, len(labels), batch):
                part = Received([z[start:start + batch] for z in rx.layers], rx.snr_db[start:start + batch])
                out, _ = receiver.run(part, config)
                top = receiver.num_layers
                hits.append((out[f"class@{top}"].argmax(1) == labels[start:start + batch]).float())
                psnrs.append(psnr(images[start:start + batch], out[f"image@{top}"]))
            rows.append({**config.as_dict(), "mflops": receiver.mflops(config),
                         "accuracy": float(torch.cat(hits).mean()), "psnr_db": float(torch.cat(psnrs).mean())})
    return rows


def play_requests(receiver: Any, table: list[dict[str, Any]], budgets: list[float],
                  priority: str) -> list[dict[str, Any]]:
    """Each (budget, preference) request through the search, with the chosen configuration's scores."""
    from semcom.receivers.slimmable import search_configuration

    index = {(r["trunk"], r["class"], r["image"]): r for r in table}
    out = []
    for budget in budgets:
        for wc, wi in PREFERENCES:
            config = search_configuration(receiver, budget, {"class": wc, "image": wi}, priority)  # type: ignore[arg-type]
            row = index[(config.trunk, config.decoder("class"), config.decoder("image"))]
            out.append({"budget_mflops": budget, "prefer": {"class": wc, "image": wi},
                        "class_share": wc / (wc + wi), "image_share": wi / (wc + wi), **row,
                        "within_budget": row["mflops"] <= budget})
    return out


def _per_budget(requests: list[dict[str, Any]], share: str, metric: str) -> list[float]:
    """Spearman's rho of ``share`` and ``metric`` within each budget (NaN where the metric does not vary)."""
    budgets = sorted({r["budget_mflops"] for r in requests})
    return [spearman([r[share] for r in requests if r["budget_mflops"] == b],
                     [r[metric] for r in requests if r["budget_mflops"] == b]) for b in budgets]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    from semcom.channels.spec import ChannelSpec
    from semcom.data import load_dataset
    from semcom.receivers import encode_dataset, load_encoder, receive
    from semcom.receivers.checkpoint import model_sha256
    from semcom.receivers.slimmable_training import train_slimmable

    encoder = load_encoder(args.model)
    train = load_dataset("mnist", "train", root=args.data_root, subset=args.train_subset)
    test = load_dataset("mnist", "test", root=args.data_root, subset=args.test_subset)
    sizes = list(encoder.layer_symbols)
    symbols = encode_dataset(encoder, test)
    channel = ChannelSpec(type="awgn").build(seed=1234)
    rx, _, _ = receive(symbols, channel, torch.full((len(test),), float(args.snr)), sizes)
    images = test.images()
    doc: dict[str, Any] = {
        "meta": {
            "command": command_line(hide_data_root=False),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} CPU, {args.threads} torch thread(s), shared 2-core host, no GPU",
            "torch": torch.__version__, "model": args.model, "model_sha256": model_sha256(args.model),
            "train_images": len(train), "test_images": len(test), "epochs": args.epochs,
            "batch_size": args.batch_size, "lr": args.lr, "width": args.width,
            "random_configs": args.random_configs, "train_channel": "awgn", "train_snr_db": [0.0, 20.0],
            "test_channel": "awgn, one draw seeded 1234 shared by every run", "test_snr_db": args.snr,
            "seeds": args.seeds, "kd_weights": args.kd_weights, "preferences": PREFERENCES,
        },
        "runs": [],
    }
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    for kd in args.kd_weights:
        for seed in args.seeds:
            t0 = time.perf_counter()
            trained = train_slimmable(encoder, train, kd_weight=kd, random_configs=args.random_configs,
                                      epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=seed,
                                      receiver_kwargs={"width": args.width})
            seconds = time.perf_counter() - t0
            receiver = trained.receiver
            table = measure_all(receiver, rx, test.labels, images)
            low, high = receiver.mflops(receiver.smallest), receiver.mflops(receiver.largest)
            budgets = [low * (high / low) ** (i / (args.budgets - 1)) for i in range(args.budgets)]
            run_doc = {"kd_weight": kd, "seed": seed, "train_seconds": round(seconds, 1),
                       "history": trained.history, "configurations": table, "searches": {}}
            for priority in PRIORITIES:
                requests = play_requests(receiver, table, budgets, priority)
                run_doc["searches"][priority] = {
                    "requests": requests,
                    "spearman_class": spearman([r["class_share"] for r in requests], [r["accuracy"] for r in requests]),
                    "spearman_image": spearman([r["image_share"] for r in requests], [r["psnr_db"] for r in requests]),
                    "spearman_class_per_budget": _per_budget(requests, "class_share", "accuracy"),
                    "spearman_image_per_budget": _per_budget(requests, "image_share", "psnr_db"),
                    "all_within_budget": all(r["within_budget"] for r in requests),
                    "max_flops_over_budget": max(r["mflops"] / r["budget_mflops"] for r in requests),
                }
            doc["runs"].append(run_doc)
            s = run_doc["searches"]["decoders"]
            print(f"kd {kd:g} seed {seed}: {seconds:.0f} s, rho class {s['spearman_class']:.3f}, "
                  f"rho image {s['spearman_image']:.3f}", file=sys.stderr, flush=True)
            out_path.write_text(json.dumps(doc, indent=1))
    return doc


def tables(doc: dict[str, Any]) -> str:
    """Markdown: budget check and rank correlations per run; requests; with vs without distillation."""
    runs = doc["runs"]
    out = ["**Requests: FLOPs within budget, and rank correlation of preference and metric**", "",
           "| search priority | distillation weight | seed | requests | all within budget | max FLOPs / budget | "
           "Spearman class share vs accuracy | Spearman image share vs PSNR | same, mean within a budget "
           "(class; image) |", "|---|---|---|---|---|---|---|---|---|"]
    for priority in PRIORITIES:
        for r in runs:
            s = r["searches"][priority]
            within = [statistics.fmean(v for v in s[f"spearman_{t}_per_budget"] if not math.isnan(v))
                      for t in ("class", "image")]
            out.append(f"| {priority} | {r['kd_weight']:g} | {r['seed']} | {len(s['requests'])} | "
                       f"{'yes' if s['all_within_budget'] else 'NO'} | {s['max_flops_over_budget']:.3f} | "
                       f"{s['spearman_class']:.3f} | {s['spearman_image']:.3f} | {within[0]:.3f}; {within[1]:.3f} |")
    out += ["", "**Summary per search priority and distillation weight (mean ± half the range over seeds; "
            "pooled: all seeds' requests in one rank correlation)**", "",
            "| search priority | distillation weight | seeds | requests per seed | mean accuracy (%) | "
            "mean PSNR (dB) | Spearman class | Spearman image | Spearman class, pooled (n) | "
            "Spearman image, pooled (n) | within a budget, class | within a budget, image |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for priority in PRIORITIES:
        for kd in sorted({r["kd_weight"] for r in runs}, reverse=True):
            group = [r["searches"][priority] for r in runs if r["kd_weight"] == kd]
            pooled = [q for s in group for q in s["requests"]]
            within = {t: [statistics.fmean(v for v in s[f"spearman_{t}_per_budget"] if not math.isnan(v))
                          for s in group] for t in ("class", "image")}
            rho_c = spearman([q["class_share"] for q in pooled], [q["accuracy"] for q in pooled])
            rho_i = spearman([q["image_share"] for q in pooled], [q["psnr_db"] for q in pooled])
            means = {m: [statistics.fmean(q[m] for q in s["requests"]) for s in group] for m in ("accuracy", "psnr_db")}
            out.append(f"| {priority} | {kd:g} | {len(group)} | {len(group[0]['requests'])} | "
                       f"{seed_cell(means['accuracy'], 100, 2)} | {seed_cell(means['psnr_db'], 1, 2)} | "
                       f"{seed_cell([s['spearman_class'] for s in group], 1, 3)} | "
                       f"{seed_cell([s['spearman_image'] for s in group], 1, 3)} | {rho_c:.3f} ({len(pooled)}) | "
                       f"{rho_i:.3f} ({len(pooled)}) | {seed_cell(within['class'], 1, 3)} | "
                       f"{seed_cell(within['image'], 1, 3)} |")
    first = [r for r in runs if r["kd_weight"] == runs[0]["kd_weight"]]
    for priority in PRIORITIES:
        requests = [r["searches"][priority]["requests"] for r in first]
        budgets = sorted({q["budget_mflops"] for q in requests[0]})
        head = "| class:image | " + " | ".join(f"{b:.3f}" for b in budgets) + " |"
        rule = "|---|" + "---|" * len(budgets)
        cells: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for seed_requests in requests:
            for q in seed_requests:
                pref = PREFERENCES.index((q["prefer"]["class"], q["prefer"]["image"]))
                cells.setdefault((pref, budgets.index(q["budget_mflops"])), []).append(q)
        out += ["", f"**Search priority {priority}: chosen configuration (trunk, class, image) per budget (MFLOPs) "
                "and preference**", "", head, rule]
        for p, (wc, wi) in enumerate(PREFERENCES):
            row = [" / ".join(sorted({f"{q['trunk']:g}, {q['class']:g}, {q['image']:g}" for q in cells[(p, b)]}))
                   for b in range(len(budgets))]
            out.append(f"| {wc}:{wi} | " + " | ".join(row) + " |")
        out += ["", f"**Search priority {priority}: accuracy (%) / PSNR (dB) of the chosen configuration "
                f"(distillation weight {runs[0]['kd_weight']:g}, mean over {len(first)} seeds)**", "", head, rule]
        for p, (wc, wi) in enumerate(PREFERENCES):
            row = [f"{statistics.fmean(q['accuracy'] for q in cells[(p, b)]) * 100:.1f} / "
                   f"{statistics.fmean(q['psnr_db'] for q in cells[(p, b)]):.2f}" for b in range(len(budgets))]
            out.append(f"| {wc}:{wi} | " + " | ".join(row) + " |")
    kds = sorted({r["kd_weight"] for r in runs}, reverse=True)
    if len(kds) > 1:
        out += ["", "**With vs without the distillation loss (same seeds; mean ± half the range over seeds; "
                "difference paired by seed)**", "",
                "| configurations | metric | " + " | ".join(f"weight {k:g}" for k in kds) +
                f" | difference ({kds[0]:g} - {kds[-1]:g}) |", "|---|---|" + "---|" * (len(kds) + 1)]
        groups = {"largest (1, 1, 1)": lambda c: c["trunk"] == c["class"] == c["image"] == 1.0,
                  "smallest": lambda c: c["mflops"] == min(x["mflops"] for x in runs[0]["configurations"]),
                  "trunk 0.125 (all decoders)": lambda c: c["trunk"] == 0.125,
                  "trunk 0.25": lambda c: c["trunk"] == 0.25,
                  "trunk 0.5": lambda c: c["trunk"] == 0.5,
                  "all configurations": lambda c: True}
        for label, keep in groups.items():
            for metric, scale, digits in (("accuracy", 100, 2), ("psnr_db", 1, 2)):
                per_kd = {}
                for k in kds:
                    per_kd[k] = {r["seed"]: statistics.fmean(c[metric] for c in r["configurations"] if keep(c))
                                 for r in runs if r["kd_weight"] == k}
                seeds = sorted(set.intersection(*(set(v) for v in per_kd.values())))
                diffs = [per_kd[kds[0]][s] - per_kd[kds[-1]][s] for s in seeds]
                cells = [seed_cell(list(per_kd[k].values()), scale, digits) for k in kds]
                name = "accuracy (%)" if metric == "accuracy" else "PSNR (dB)"
                out.append(f"| {label} | {name} | " + " | ".join(cells) + f" | {seed_cell(diffs, scale, digits)} |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mnist-mr3-awgn", help="zoo name or checkpoint of the frozen encoder")
    ap.add_argument("--data-root", default=os.environ.get("SEMCOM_DATA"),
                    help="data root holding the MNIST files (default: $SEMCOM_DATA)")
    ap.add_argument("--train-subset", type=int, default=20000)
    ap.add_argument("--test-subset", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--random-configs", type=int, default=2)
    ap.add_argument("--kd-weights", type=float, nargs="+", default=[1.0, 0.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--budgets", type=int, default=8, help="budgets, geometric from the smallest to the largest")
    ap.add_argument("--snr", type=float, default=10.0, help="test SNR in dB")
    ap.add_argument("--threads", type=int, default=1)
    add_output_options(ap, "bench/results/slimmable.json")
    run_or_table(ap.parse_args(), run, tables)


if __name__ == "__main__":
    main()
