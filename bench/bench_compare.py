"""The comparison semcom exists for: every zoo JSCC against the linear analog code and SSCC, one run.

    python bench/bench_compare.py --mnist-root DATA --cifar-root DATA          # every zoo model
    python bench/bench_compare.py --models mnist-mr3-awgn,mnist-mr3-rayleigh --out compare_mnist

For each zoo model, on its dataset's test split (all images unless ``--count``), through the channel
it was trained for (AWGN, or Rayleigh with one gain per image and perfect CSI), at each SNR and for
``--draws`` independent noise (and fading) draws:

- the JSCC, every layer: mean per-image PSNR, pooled PSNR ``10 log10(1 / mean MSE)``, top-1 accuracy;
- the linear analog code on the same layers: the one an anchored model is built on (KLT, MMSE
  allocation designed for 10 dB, like the JSCC's fixed transmitter), and the same transform with the
  allocation designed at the test SNR (a transmitter that knows the SNR: a stronger reference). A
  model that is not anchored is compared with a code fitted here on its training split;
- on AWGN, the SSCC: JPEG and HEVC-intra + 5G LDPC + QAM on one layer of all the model's channel
  uses, the MCS chosen per SNR from the BLER tables (target 0.1) and the capacity bound, on the first
  ``--sscc-count`` test images (one draw; rate matching and LDPC decoding dominate the run time;
  models with the same channel uses share these rows).

Intervals: the PSNR ``±`` is the 95% t-interval of the per-draw means (it holds the noise draws'
spread); accuracy ``±`` is the normal 95% half-width over images x draws. Writes
``bench/results/compare.json`` and prints Markdown tables and the issue's targets checked.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from _common import write_json

from semcom.analog.code import LinearAnalogCode, LinearCodeConfig
from semcom.analog.store import fit_linear_code
from semcom.analog.system import LinearAnalogSystem
from semcom.channels import build_channel
from semcom.data import load_dataset, without_mnist_sample
from semcom.evaluation import LayerCollector, NoSeeds, StreamPerSnr, evaluate_system
from semcom.jscc.system import JsccSystem
from semcom.jscc.zoo import load_model
from semcom.metrics import pooled_psnr, t_interval95
from semcom.zoo import list_models


def _channel(card: dict, seed: int | None = None):
    ch = card.get("channel", {"name": "awgn"})
    return build_channel(ch["name"], block=ch.get("block", "image"), csi=ch.get("csi", "perfect"), seed=seed,
                         k_factor=ch.get("k_factor", 1.0) if ch["name"] == "rician" else None)


@dataclass(frozen=True)
class _FreshNoisePerBatch(NoSeeds):
    """The channel restarts at ``1000 i + d + 7919 b`` for the i-th SNR, draw d, batch b: every system
    sees the same noise (and fading) on the same image."""

    snr_index: int

    def channel(self, point: int, link: str, draw: int, batch: int) -> int | None:
        return 1000 * self.snr_index + draw + 7919 * batch


def _summary(collected: LayerCollector, accuracy: bool) -> dict:
    """One cell: mean and pooled PSNR over images x draws with the t-intervals of the per-draw values;
    accuracy with its normal 95% half-width over images x draws."""
    per_draw = [collected.psnr_values(d) for d in collected.draws()]
    allv = torch.cat(per_draw)
    out = {
        "psnr_mean": round(float(allv.double().mean()), 3),
        "psnr_ci95": round(t_interval95([float(v.double().mean()) for v in per_draw]), 3),
        "psnr_pooled": round(float(pooled_psnr(allv)), 3),
        "psnr_pooled_ci95": round(t_interval95([float(pooled_psnr(v)) for v in per_draw]), 3),
    }
    hits = torch.cat([collected.hits(d) for d in collected.draws()])
    if accuracy and hits.numel():
        c = hits.double()
        p = float(c.mean())
        out["accuracy"] = round(100 * p, 2)
        out["accuracy_ci95"] = round(100 * 1.96 * math.sqrt(max(p * (1 - p), 1e-12) / c.numel()), 2)
    return out


def _training_split(dataset: str, root: str, card: dict):
    """The images the zoo recipe fits its linear code on: train (minus the offline sample) minus validation."""
    ds = load_dataset(dataset, "train", root=root)
    if "excluded" in card.get("dataset", {}):
        ds = without_mnist_sample(ds)
    val = (card.get("dataset", {}).get("validation") or {})
    return ds.split_validation(int(val.get("images", 5000)), int(val.get("seed", 0)))[0]


@torch.no_grad()
def _score_model(name: str, model, card: dict, test, root: str, snrs: list[float], draws: int,
                 batch: int) -> dict:
    code: LinearAnalogCode | None = getattr(model, "linear", None)
    source = "the model's own anchor"
    if code is None:
        cfg = LinearCodeConfig(test.shape, tuple(model.layer_symbols))
        code, _ = fit_linear_code(_training_split(card["dataset"]["name"], root, card), cfg)
        source = "fitted here on the model's training split"
    adaptive = code.with_options(design_snr_db=None)
    L = model.num_layers
    links = {"jscc": JsccSystem(model), "linear (10 dB design)": LinearAnalogSystem(code),
             "linear (test-SNR design)": LinearAnalogSystem(adaptive)}
    systems: dict[str, list[list[dict]]] = {label: [[{} for _ in snrs] for _ in range(L)] for label in links}
    for si, snr in enumerate(snrs):
        for label, link in links.items():
            result = evaluate_system(link, test, _channel(card), [snr], draws=draws, batch_size=batch,
                                     seeds=_FreshNoisePerBatch(si))
            for r in range(L):
                systems[label][r][si] = _summary(result.layers[0][r], label == "jscc")
        print(f"  {name} {snr:g} dB: jscc {[systems['jscc'][r][si]['psnr_mean'] for r in range(L)]} "
              f"linear {[systems['linear (10 dB design)'][r][si]['psnr_mean'] for r in range(L)]}", flush=True)
    power = torch.zeros(L, dtype=torch.float64)
    for images, _ in test.batches(batch):
        sym = model.encode(images)
        power += torch.stack([(z.abs().square()).sum(1).mean().double() / z.shape[1]
                              for z in torch.split(sym, list(model.layer_symbols), dim=1)]) * len(images)
    power /= len(test)
    print(f"  {name}: mean power per complex symbol by layer on the test images {power.tolist()}", flush=True)
    return {"linear_source": source, "systems": systems,
            "measured_power_per_layer": [round(float(p), 4) for p in power]}


@torch.no_grad()
def _score_sscc(model, test, count: int, snrs: list[float], codecs: list[str]) -> dict:
    from semcom.sscc.system import SsccSystem

    sub = test.subset(min(count, len(test)))
    k = sum(model.layer_symbols)
    out = {}
    for codec in codecs:
        for mcs in ("adaptive", "capacity"):
            cells = []
            for si, snr in enumerate(snrs):
                system = SsccSystem(codec, mcs, [k], test.mean_image())
                result = evaluate_system(system, sub, build_channel("awgn"), [snr], batch_size=len(sub),
                                         seeds=StreamPerSnr(50_000 + si), tasks={"reconstruction"})
                collected = result.layers[0][0]
                cell = _summary(collected, False)
                cell["outage"] = round(float(collected.outages().mean()), 4)
                cell["mcs"] = collected.infos()[0].get("mcs")
                cells.append(cell)
            out[f"{codec} + {'best MCS' if mcs == 'adaptive' else 'capacity'}"] = cells
            print(f"  sscc {codec} {mcs}: {[c['psnr_mean'] for c in cells]}", flush=True)
    return {"images": len(sub), "symbols": k, "systems": out}


def _targets(models: dict, snrs: list[float]) -> list[str]:
    """The issue's targets, checked on these numbers: one line each, with the margin."""
    lines = []
    for name, m in models.items():
        jscc = m["systems"]["jscc"][-1]
        lin = m["systems"]["linear (10 dB design)"][-1]
        for metric in ("psnr_mean", "psnr_pooled"):
            gaps = [round(j[metric] - li[metric], 2) for j, li in zip(jscc, lin, strict=True)]
            lines.append(f"{name}: JSCC - linear ({metric}) by SNR {gaps}: {'holds' if min(gaps) >= 0 else 'MISSES'}")
        if "sscc" in m:
            best = [max(c[si]["psnr_mean"] for k, c in m["sscc"]["systems"].items() if "best MCS" in k)
                    for si in range(len(snrs))]
            gaps = [round(j["psnr_mean"] - b, 2) for j, b in zip(jscc, best, strict=True)]
            lines.append(f"{name}: JSCC - best SSCC (psnr_mean, SSCC on {m['sscc']['images']} images) by SNR "
                         f"{gaps}: {'holds' if min(gaps) >= 0 else 'MISSES'}")
    return lines


def _markdown(models: dict, snrs: list[float]) -> str:
    head = "| model | system | layers | " + " | ".join(f"{s:g} dB" for s in snrs) + " |"
    lines = [head, "|---|---|---|" + "---|" * len(snrs)]
    for name, m in models.items():
        for label, rows in m["systems"].items():
            for r, cells in enumerate(rows, start=1):
                text = " | ".join(f"{c['psnr_mean']:.2f} ± {c['psnr_ci95']:.2f} ({c['psnr_pooled']:.2f})"
                                  for c in cells)
                lines.append(f"| {name} | {label} | 1..{r} | {text} |")
        for label, cells in m.get("sscc", {}).get("systems", {}).items():
            text = " | ".join(f"{c['psnr_mean']:.2f} ({c['psnr_pooled']:.2f})" + (f" out {c['outage']:.0%}"
                                                                                    if c["outage"] else "")
                              for c in cells)
            lines.append(f"| {name} | {label} | all | {text} |")
        for r, cells in enumerate(m["systems"]["jscc"], start=1):
            if "accuracy" in cells[0]:
                text = " | ".join(f"{c['accuracy']:.2f} ± {c['accuracy_ci95']:.2f}" for c in cells)
                lines.append(f"| {name} | jscc accuracy % | 1..{r} | {text} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="", help="comma-separated zoo names (default: every zoo model)")
    ap.add_argument("--mnist-root", default=os.environ.get("SEMCOM_DATA"),
                    help="data root holding mnist/ (default: $SEMCOM_DATA)")
    ap.add_argument("--cifar-root", default=os.environ.get("SEMCOM_DATA"),
                    help="data root holding cifar-10-batches-bin/ (default: $SEMCOM_DATA)")
    ap.add_argument("--snrs", default="0,5,10,15,20")
    ap.add_argument("--count", type=int, default=0, help="test images per model (0: all)")
    ap.add_argument("--draws", type=int, default=3, help="independent noise draws per SNR")
    ap.add_argument("--sscc-count", type=int, default=1000, help="test images for the SSCC rows (0: none)")
    ap.add_argument("--codecs", default="jpeg,hevc-intra")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="compare")
    ap.add_argument("--sscc-cache", default="", help="JSON file: SSCC rows are read from it when it holds the "
                    "same dataset, channel uses, images, SNRs and codecs, else computed and written to it")
    ap.add_argument("--sscc-only", action="store_true", help="only compute the SSCC rows (into --sscc-cache)")
    ap.add_argument("--report", nargs="+", default=None, metavar="JSON",
                    help="no measuring: print the tables and target checks of results files written earlier")
    args = ap.parse_args(argv)
    if args.report:
        for path in args.report:
            doc = json.loads(Path(path).read_text())
            print(f"<!-- {path}: {doc['command']} ({doc['machine']['date']}, {doc['seconds']} s) -->")
            print(_markdown(doc["models"], doc["snr_db"]))
            print("\n".join(f"- {t}" for t in doc["targets"]))
        return 0
    torch.set_num_threads(args.threads)
    snrs = [float(s) for s in args.snrs.split(",")]
    wanted = [m for m in args.models.split(",") if m]
    t0 = time.perf_counter()
    models: dict = {}
    sscc_done: dict[tuple, dict] = {}  # the SSCC rows depend only on the dataset and the channel uses
    for entry in list_models():
        if not entry.available or (wanted and entry.name not in wanted):
            continue
        card = entry.card
        dataset = card["dataset"]["name"]
        root = args.cifar_root if dataset == "cifar10" else args.mnist_root
        test = load_dataset(dataset, "test", root=root)
        if args.count:
            test = test.subset(min(args.count, len(test)))
        model = load_model(entry.name)
        print(f"{entry.name}: {len(test)} test images, {args.draws} draws", flush=True)
        m = {"systems": {}} if args.sscc_only else _score_model(entry.name, model, card, test, root, snrs,
                                                                  args.draws, args.batch)
        m.update(images=len(test), draws=args.draws, channel=card.get("channel"), arch=model.config.arch,
                 layer_symbols=list(model.layer_symbols), sha256=card.get("sha256"))
        if args.sscc_count and card.get("channel", {}).get("name") == "awgn":
            key = f"{dataset}|{sum(model.layer_symbols)}|{min(args.sscc_count, len(test))}|{snrs}|{args.codecs}"
            if key not in sscc_done and args.sscc_cache and Path(args.sscc_cache).is_file():
                sscc_done.update(json.loads(Path(args.sscc_cache).read_text()))
            if key not in sscc_done:
                sscc_done[key] = _score_sscc(model, test, args.sscc_count, snrs, args.codecs.split(","))
                if args.sscc_cache:
                    Path(args.sscc_cache).write_text(json.dumps(sscc_done, indent=1))
            m["sscc"] = sscc_done[key]
        models[entry.name] = m
    if args.sscc_only:
        print(f"SSCC rows in {args.sscc_cache}")
        return 0
    targets = _targets(models, snrs)
    path = write_json(args.out, {
        "command": " ".join(["python bench/bench_compare.py", *(argv if argv is not None else sys.argv[1:])]),
        "snr_db": snrs, "seconds": round(time.perf_counter() - t0), "targets": targets, "models": models,
        "notes": "PSNR cells: mean per image ± 95% t-interval over draws (pooled PSNR in brackets). CIFAR-10 "
                 "is the JPEG-75 development copy: JPEG near quality 75 gives back its pixels exactly, "
                 "which flatters the JPEG rows at high SNR.",
    })
    print(_markdown(models, snrs))
    print("\n".join(targets))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
