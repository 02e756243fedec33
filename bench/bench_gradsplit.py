"""Benchmark of GradSplit against hard sharing and separate networks on a frozen zoo JSCC encoder (not a test).

Trains, at each trunk width and seed, five receivers with the same trunk depth, width and heads
(:mod:`semcom.receivers.gradsplit`): ``shared-trunk`` (hard sharing), ``gradsplit`` (identity
relation), ``gradsplit-estimated`` (relation from gradient agreement in the first steps),
``gradsplit-estimated-retrained`` (``gradsplit`` trained from the start with the relation that
``gradsplit-estimated`` found at the same width and seed) and ``separate-trunks`` (one trunk per
task). Tasks: class, coarse concept and image reconstruction, all from layers 1..L. Training: AWGN,
SNR drawn per image uniformly from 0-20 dB, equal weighting. Evaluation: AWGN at a few SNRs,
accuracy, coarse accuracy and PSNR with all L layers. Each run records its inference FLOPs
(multiply-accumulates per image) and, for GradSplit, the relation matrix and the measured gradient
agreement. Writes JSON (``--out``) and prints Markdown tables; ``--merge`` keeps the runs of other
(method, width, seed) triples already in ``--out``; ``--table FILE`` prints the tables of an
existing file.

    python bench/bench_gradsplit.py --data-root DATA --widths 48 96 --seeds 0 1 2
    python bench/bench_gradsplit.py --table bench/results/gradsplit.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from _common import add_output_options, add_seed_options, command_line, machine, run_or_table, seed_cell

METHODS = ("shared-trunk", "gradsplit", "gradsplit-estimated", "gradsplit-estimated-retrained", "separate-trunks")
RETRAINED = "gradsplit-estimated-retrained"
"""``gradsplit`` trained from the start with the relation that ``gradsplit-estimated`` estimated at the
same width and seed (its first 100 steps act as a probe run; it must come first)."""


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    from semcom.data import load_dataset
    from semcom.receivers import evaluate_receiver, load_encoder, train_receiver
    from semcom.receivers.checkpoint import model_sha256

    encoder = load_encoder(args.model)
    train = load_dataset(args.dataset, "train", root=args.data_root, subset=args.train_subset)
    test = load_dataset(args.dataset, "test", root=args.data_root, subset=args.test_subset)
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    previous: dict[str, Any] = {"meta": {}, "runs": []}
    if args.merge and out_path.exists():
        previous = json.loads(out_path.read_text())
    rerun = {(m, w, s) for m in args.methods for w in args.widths for s in args.seeds}
    command = command_line()
    doc: dict[str, Any] = {
        "meta": {
            "commands": [*previous["meta"].get("commands", []), command],
            "machine": {**machine(), "host": "shared 2-core CPU host, no GPU"},
            "model": args.model, "model_sha256": model_sha256(args.model), "dataset": args.dataset,
            "train_images": len(train), "test_images": len(test), "epochs": args.epochs,
            "batch_size": args.batch_size, "lr": args.lr, "depth": args.depth, "tasks": args.tasks,
            "weighting": "equal", "train_channel": "awgn", "train_snr_db": [0.0, 20.0],
            "test_snrs_db": args.snrs, "flops": "multiply-accumulates of the Linear layers per image, inference",
        },
        "runs": [r for r in previous["runs"] if (r["receiver"], r["width"], r["seed"]) not in rerun],
    }
    for width in args.widths:
        for name in args.methods:
            for seed in args.seeds:
                options: dict[str, Any] = {"width": width, "depth": args.depth, "tasks": args.tasks}
                receiver = name
                if name == RETRAINED:
                    probe = [r for r in doc["runs"] if (r["receiver"], r["width"], r["seed"])
                             == ("gradsplit-estimated", width, seed)]
                    if not probe:
                        raise SystemExit(f"{RETRAINED} needs the gradsplit-estimated run at width {width}, "
                                         f"seed {seed} (run that method first or keep it with --merge)")
                    receiver, options["relation"] = "gradsplit", probe[-1]["relation"]
                t0 = time.perf_counter()
                trained = train_receiver(receiver, encoder, train, epochs=args.epochs, batch_size=args.batch_size,
                                         lr=args.lr, seed=seed, receiver_kwargs=options)
                seconds = time.perf_counter() - t0
                rows = evaluate_receiver(trained, test, args.snrs, seed=1234 + seed)
                net = trained.receiver
                flops = net.inference_flops()
                record: dict[str, Any] = {
                    "receiver": name, "width": width, "seed": seed, "train_seconds": round(seconds, 1),
                    "flops": flops, "parameters": sum(p.numel() for p in net.parameters()),
                    "rows": rows,  # layer L only: these receivers answer with all layers
                }
                if hasattr(net, "relation"):
                    channels = net.num_tasks if bool((net.relation < 1).any()) else 1
                    record["relation"] = net.relation.tolist()
                    record["agreement"] = [[round(v, 4) for v in row] for row in net.agreement().tolist()]
                    record["training_forward_flops"] = channels * flops["trunk"] + flops["heads"]
                else:
                    record["training_forward_flops"] = flops["total"]
                doc["runs"].append(record)
                print(f"{name} w={width} seed {seed}: {seconds:.0f} s", file=sys.stderr, flush=True)
                out_path.write_text(json.dumps(doc, indent=1))
    out_path.write_text(json.dumps(doc, indent=1))
    return doc


def tables(doc: dict[str, Any]) -> str:
    """One table, rows sorted by inference FLOPs: accuracy, coarse accuracy and PSNR per SNR."""
    snrs = doc["meta"]["test_snrs_db"]
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in doc["runs"]:
        groups[(r["receiver"], r["width"])].append(r)
    head = (["method", "width", "kFLOPs (trunk)", "seeds"] + [f"acc % {s:g} dB" for s in snrs]
            + [f"coarse % {s:g} dB" for s in snrs] + [f"PSNR dB {s:g} dB" for s in snrs])
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    order = sorted(groups, key=lambda k: (groups[k][0]["flops"]["total"], METHODS.index(k[0])
                                          if k[0] in METHODS else 99))
    for key in order:
        runs = groups[key]
        f = runs[0]["flops"]

        def values(metric: str, snr: float, runs: list[dict[str, Any]] = runs) -> list[float]:
            return [row[metric] for r in runs for row in r["rows"] if row["snr_db"] == snr and metric in row]

        cells = [key[0], str(key[1]), f"{f['total'] / 1e3:.0f} ({f['trunk'] / 1e3:.0f})", str(len(runs))]
        cells += [seed_cell(values("accuracy", s), 100) for s in snrs]
        cells += [seed_cell(values("coarse_accuracy", s), 100) for s in snrs]
        cells += [seed_cell(values("psnr_db", s), 1, 2) for s in snrs]
        lines.append("| " + " | ".join(cells) + " |")
    out = ["**Accuracy, coarse accuracy and PSNR vs inference FLOPs (AWGN, all layers; mean ± half the "
           "range over seeds)**", "", *lines, ""]
    relations = [(r["width"], r["seed"], r["relation"], r["agreement"]) for r in doc["runs"]
                 if r["receiver"] == "gradsplit-estimated"]
    if relations:
        out += ["**Estimated relation (rows: feature groups, columns: tasks, in the order "
                f"{', '.join(doc['meta']['tasks'])}) and mean gradient cosine**", "",
                "| width | seed | R | cosine C[g, s] |", "|---|---|---|---|"]
        for width, seed, rel, agr in sorted(relations):
            r_txt = " / ".join("".join(str(int(v)) for v in row) for row in rel)
            c_txt = " / ".join(", ".join(f"{v:+.3f}" for v in row) for row in agr)
            out.append(f"| {width} | {seed} | {r_txt} | {c_txt} |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mnist-mr3-awgn", help="zoo name or JSCC checkpoint")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-root", default=None, help="data root (default: $SEMCOM_DATA or the user cache)")
    ap.add_argument("--train-subset", type=int, default=20000)
    ap.add_argument("--test-subset", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--widths", type=int, nargs="+", default=[48, 96, 192])
    ap.add_argument("--tasks", nargs="+", default=["class", "coarse", "image"])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--snrs", type=float, nargs="+", default=[0.0, 10.0, 20.0])
    add_seed_options(ap, [0, 1])
    add_output_options(ap, "bench/results/gradsplit.json",
                       merge="keep the other (method, width, seed) runs already in --out")
    run_or_table(ap.parse_args(), run, tables)


if __name__ == "__main__":
    main()
