"""Benchmark of recurrent modular routing against fully shared and fully separate recurrent receivers.

Trains ``recurrent-routing``, ``recurrent-shared`` and ``recurrent-separate`` (parameter counts
matched) on the frozen encoder of a zoo JSCC model, with the two tasks classification and
reconstruction, over AWGN at SNRs drawn per image from 0-20 dB, for several seeds. Then:

* accuracy and PSNR per SNR and resolution r (layers 1..r), :func:`semcom.receivers.evaluate_receiver`;
* for the routing receiver, its hard test-time routes on the test images at a low and a high SNR:
  how often each module is used per task and step, and how far routes lie apart (the fraction of the
  C connections that differ) between the two tasks (same image, same channel draw), between the low
  and the high SNR (same image, same noise draw scaled to each SNR), and between two noise draws at the same SNR (the
  floor: how much routes move with the noise alone).

Writes JSON (``--out``) and prints Markdown tables; ``--table FILE`` only prints the tables.

    python bench/bench_routing.py --data-root DATA --train-subset 20000 --seeds 0 1 --threads 1
    python bench/bench_routing.py --table bench/results/routing.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from _common import add_output_options, add_seed_options, command_line, machine, run_or_table, seed_cell

VARIANTS = ("recurrent-routing", "recurrent-shared", "recurrent-separate")
SOFT = "recurrent-routing, soft test routes (diagnostic)"


def _routes(trained: Any, symbols: Any, snr_db: float, seed: int, told_db: float | None = None,
            batch_size: int = 500) -> Any:
    """Hard test-time routes ``[N, L, T, C]`` (uint8) of every image sent at ``snr_db`` over AWGN (the
    channel starting at ``seed``), the receiver told ``told_db`` (default: ``snr_db``)."""
    import torch

    from semcom.channels import build_channel
    from semcom.receivers import Received, receive

    model = trained.receiver.eval()
    sizes = list(trained.encoder.layer_symbols)
    channel = build_channel("awgn", seed=seed)
    out = []
    for chunk in torch.split(symbols, batch_size):
        rx, _, _ = receive(chunk, channel, torch.full((len(chunk),), float(snr_db)), sizes)
        if told_db is not None:
            rx = Received(rx.layers, torch.full((len(chunk),), float(told_db)))
        pred = model.predict(rx)
        out.append(torch.stack([pred[f"route@{r}"] for r in range(1, len(sizes) + 1)], dim=1).to(torch.uint8))
    return torch.cat(out)


def route_statistics(trained: Any, symbols: Any, snrs: list[float], seed: int) -> dict[str, Any]:
    """Module usage and route distances of a routing receiver on ``symbols`` (see the module docstring).

    Per task and step (fractions in [0, 1]):

    * ``usage``: how often each module is used (:func:`semcom.receivers.routing.module_usage`);
    * ``mode_share``: the share of images on the most common route;
    * ``task_distance``: per image, the fraction of connections where the class and image routes differ;
    * ``snr_distance``: per image, the fraction that differs between the low and the high SNR (same
      noise draw, scaled), against ``noise_distance``: between two noise draws at the same SNR;
    * ``snr_frequency_gap``: mean over connections of the gap in how often a connection is on at the
      low and at the high SNR, against ``noise_frequency_gap``: the same between two noise draws;
    * ``told_distance``: per image, the fraction that differs when only the SNR the receiver is told
      moves from low to high (the received symbols stay those of the low SNR).
    """
    from semcom.receivers.routing import ROUTED_TASKS, module_usage

    model = trained.receiver
    m, d = model.modules_per_layer, model.depth
    lo, hi = snrs[0], snrs[-1]
    routes = {snr: _routes(trained, symbols, snr, seed) for snr in snrs}
    again = {snr: _routes(trained, symbols, snr, seed + 10_000) for snr in snrs}
    told = _routes(trained, symbols, lo, seed, told_db=hi)
    steps = routes[lo].shape[1]

    def differ(a: Any, b: Any) -> list[float]:  # per step: mean fraction of differing connections
        return [float((a[:, s] != b[:, s]).float().mean()) for s in range(steps)]

    def frequency_gap(a: Any, b: Any) -> list[float]:  # per step: mean |P_a(on) - P_b(on)| over connections
        return [float((a[:, s].float().mean(0) - b[:, s].float().mean(0)).abs().mean()) for s in range(steps)]

    def mode_share(a: Any) -> list[float]:
        return [float(a[:, s].unique(dim=0, return_counts=True)[1].max()) / len(a) for s in range(steps)]

    tasks = list(ROUTED_TASKS)
    stats: dict[str, Any] = {"modules": m, "depth": d, "connections": model.connections, "tasks": tasks,
                             "snrs_db": [lo, hi], "usage": {}, "mode_share": {}, "task_distance": {},
                             "noise_distance": {}, "noise_frequency_gap": {}}
    for snr in (lo, hi):
        r = routes[snr]                                                 # [N, L, T, C]
        usage = module_usage(r.float(), m, d).float().mean(dim=0)       # [L, T, D, M]
        stats["usage"][str(snr)] = {t: usage[:, i].tolist() for i, t in enumerate(tasks)}
        stats["mode_share"][str(snr)] = {t: mode_share(r[:, :, i]) for i, t in enumerate(tasks)}
        stats["task_distance"][str(snr)] = differ(r[:, :, 0], r[:, :, 1])
        stats["noise_distance"][str(snr)] = {t: differ(r[:, :, i], again[snr][:, :, i]) for i, t in enumerate(tasks)}
        stats["noise_frequency_gap"][str(snr)] = {t: frequency_gap(r[:, :, i], again[snr][:, :, i])
                                                  for i, t in enumerate(tasks)}
    stats["snr_distance"] = {t: differ(routes[lo][:, :, i], routes[hi][:, :, i]) for i, t in enumerate(tasks)}
    stats["snr_frequency_gap"] = {t: frequency_gap(routes[lo][:, :, i], routes[hi][:, :, i])
                                  for i, t in enumerate(tasks)}
    stats["told_distance"] = {t: differ(routes[lo][:, :, i], told[:, :, i]) for i, t in enumerate(tasks)}
    return stats


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    from semcom.data import load_dataset
    from semcom.receivers import encode_dataset, evaluate_receiver, load_encoder, train_receiver
    from semcom.receivers.checkpoint import model_sha256
    from semcom.receivers.routing import parameter_count

    encoder = load_encoder(args.model)
    train = load_dataset(args.dataset, "train", root=args.data_root, subset=args.train_subset)
    test = load_dataset(args.dataset, "test", root=args.data_root, subset=args.test_subset)
    symbols = encode_dataset(encoder, test)
    options = {"width": args.width, "modules": args.modules, "depth": args.depth, "image_weight": args.image_weight,
               "gates": args.gates, "anneal_steps": args.anneal_steps}
    doc: dict[str, Any] = {
        "meta": {
            "command": command_line(),
            "machine": {**machine(), "note": "shared 2-core host, no GPU"},
            "model": args.model, "model_sha256": model_sha256(args.model), "dataset": args.dataset,
            "train_images": len(train), "test_images": len(test), "epochs": args.epochs,
            "batch_size": args.batch_size, "lr": args.lr, "options": options,
            "train_channel": "awgn", "train_snr_db": [0.0, 20.0], "test_snrs_db": args.snrs,
            "route_snrs_db": args.route_snrs, "seeds": args.seeds,
        },
        "runs": [],
    }
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for name in VARIANTS:
            t0 = time.perf_counter()
            trained = train_receiver(name, encoder, train, epochs=args.epochs, batch_size=args.batch_size,
                                     lr=args.lr, seed=seed, receiver_kwargs=options)
            seconds = time.perf_counter() - t0
            entry: dict[str, Any] = {
                "receiver": name, "seed": seed, "width": trained.receiver.width,
                "parameters": parameter_count(trained.receiver), "train_seconds": round(seconds, 1),
                "rows": evaluate_receiver(trained, test, args.snrs, seed=1234 + seed),
            }
            entry["last_epoch_losses"] = {k: v for k, v in trained.history[-1].items() if "@" in k}
            if name == "recurrent-routing":
                entry["routes"] = route_statistics(trained, symbols, args.route_snrs, 1234 + seed)
                trained.receiver.hard_test = False  # the diagnostic: noise-free soft routes at test
                entry["soft_test_rows"] = evaluate_receiver(trained, test, args.snrs, seed=1234 + seed)
                trained.receiver.hard_test = True
            doc["runs"].append(entry)
            print(f"{name} seed {seed}: {seconds:.0f} s", file=sys.stderr, flush=True)
            out_path.write_text(json.dumps(doc, indent=1))
    return doc


def tables(doc: dict[str, Any]) -> str:
    meta, runs = doc["meta"], doc["runs"]
    out: list[str] = []
    names = [n for n in VARIANTS if any(r["receiver"] == n for r in runs)]
    lines = ["| receiver | width | parameters | training time (s) |", "|---|---|---|---|"]
    for n in names:
        rs = [r for r in runs if r["receiver"] == n]
        lines.append(f"| {n} | {rs[0]['width']} | {rs[0]['parameters']:,} | "
                     f"{seed_cell([r['train_seconds'] for r in rs], digits=0)} |")
    out.append("**Parameters (matched) and training time**\n\n" + "\n".join(lines) + "\n")
    weight = meta["options"]["image_weight"]
    lines = [f"| receiver | class@3 (cross-entropy) | image@3 ({weight:g} x MSE) |", "|---|---|---|"]
    for n in names:
        rs = [r for r in runs if r["receiver"] == n and "last_epoch_losses" in r]
        if rs:
            lines.append(f"| {n} | " + " | ".join(seed_cell([r["last_epoch_losses"][k] for r in rs], 1.0, 3)
                                                 for k in ("class@3", "image@3")) + " |")
    out.append("**Training loss with layers 1..3, mean over the last epoch**\n\n"
               + "\n".join(lines) + "\n")
    soft = [{"receiver": SOFT, "seed": r["seed"], "rows": r["soft_test_rows"]} for r in runs if "soft_test_rows" in r]
    runs = runs + soft
    names = names + ([SOFT] if soft else [])
    layers = sorted({row["layer"] for r in runs for row in r["rows"]})
    for metric, title, scale, digits in (("accuracy", "Top-1 accuracy (%)", 100.0, 1),
                                         ("psnr_db", "Reconstruction PSNR (dB)", 1.0, 2)):
        head = [f"{s:g} dB L{r}" for s in meta["test_snrs_db"] for r in layers]
        lines = ["| receiver | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
        for n in names:
            rs = [r for r in runs if r["receiver"] == n]
            cells = []
            for s in meta["test_snrs_db"]:
                for layer in layers:
                    vals = [row[metric] for r in rs for row in r["rows"]
                            if row["snr_db"] == s and row["layer"] == layer and metric in row]
                    cells.append(seed_cell(vals, scale, digits))
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
        out.append(f"**{title}, AWGN, mean over seeds {meta['seeds']} ± half the range**\n\n"
                   + "\n".join(lines) + "\n")
    routed = [r for r in runs if "routes" in r]
    if routed:
        out.append(_route_tables(routed))
    return "\n".join(out)


def _route_tables(routed: list[dict[str, Any]]) -> str:
    first = routed[0]["routes"]
    tasks = first["tasks"]
    lo, hi = (str(s) for s in first["snrs_db"])
    lo_db, hi_db = (f"{s:g} dB" for s in first["snrs_db"])
    steps = len(first["task_distance"][lo])
    m, d = first["modules"], first["depth"]
    out = []
    # module usage of one seed (module identities differ between seeds)
    mods = [f"P{layer + 1}.{j + 1}" for layer in range(d) for j in range(m)]
    lines = ["| task | step | SNR | " + " | ".join(mods) + " | most common route |",
             "|---|---|---|" + "---|" * (len(mods) + 1)]
    for task in tasks:
        for s in range(steps):
            for snr, label in ((lo, lo_db), (hi, hi_db)):
                usage = first["usage"][snr][task][s]
                cells = [f"{100 * usage[layer][j]:.0f}" for layer in range(d) for j in range(m)]
                share = first["mode_share"][snr][task][s]
                lines.append(f"| {task} | {s + 1} | {label} | " + " | ".join(cells) + f" | {100 * share:.0f} |")
    out.append(f"**Module usage (% of test images), hard test-time routes, seed {routed[0]['seed']}** "
               "(P l.j: module j of pool layer l; last column: % of images on the most common route)\n\n"
               + "\n".join(lines) + "\n")
    seeds = [r["seed"] for r in routed]

    def cell(path: list[str], s: int) -> str:
        values = []
        for r in routed:
            v: Any = r["routes"]
            for key in path:
                v = v[key]
            values.append(v[s])
        return seed_cell(values, 100, 1)

    lines = ["| step | " + lo_db + " | " + hi_db + " |", "|---|---|---|"]
    lines += [f"| {s + 1} | {cell(['task_distance', lo], s)} | {cell(['task_distance', hi], s)} |"
              for s in range(steps)]
    out.append(f"**Class vs image route: % of the {first['connections']} connections that differ, per image, "
               f"mean over seeds {seeds} ± half the range**\n\n" + "\n".join(lines) + "\n")
    head = (f"| task | step | per image: {lo_db} vs {hi_db} | two noise draws, {lo_db} | two noise draws, {hi_db} "
            f"| told SNR only, {lo_db} -> {hi_db} | frequency gap {lo_db} vs {hi_db} | frequency gap, two draws, "
            f"{lo_db} |")
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for t in tasks:
        for s in range(steps):
            cells = [cell(["snr_distance", t], s), cell(["noise_distance", lo, t], s),
                     cell(["noise_distance", hi, t], s), cell(["told_distance", t], s),
                     cell(["snr_frequency_gap", t], s), cell(["noise_frequency_gap", lo, t], s)]
            lines.append(f"| {t} | {s + 1} | " + " | ".join(cells) + " |")
    out.append("**Low vs high SNR: % of connections that differ per image (same images; the noise floor: two "
               "noise draws at one SNR), and the mean gap in % of images with a connection on (frequency gap), "
               f"mean over seeds {seeds} ± half the range**\n\n" + "\n".join(lines) + "\n")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mnist-mr3-awgn", help="zoo name or JSCC checkpoint")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-root", default=os.environ.get("SEMCOM_DATA"),
                    help="data root holding the dataset (default: $SEMCOM_DATA)")
    ap.add_argument("--train-subset", type=int, default=15000)
    ap.add_argument("--test-subset", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--width", type=int, default=48)
    ap.add_argument("--modules", type=int, default=4)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--image-weight", type=float, default=10.0)
    ap.add_argument("--gates", default="soft", choices=["soft", "straight-through"])
    ap.add_argument("--anneal-steps", type=int, default=500)
    ap.add_argument("--snrs", type=float, nargs="+", default=[0.0, 10.0, 20.0])
    ap.add_argument("--route-snrs", type=float, nargs=2, default=[0.0, 20.0], help="the low and the high SNR")
    add_seed_options(ap, [0, 1, 2])
    add_output_options(ap, "bench/results/routing.json")
    run_or_table(ap.parse_args(), run, tables)


if __name__ == "__main__":
    main()
