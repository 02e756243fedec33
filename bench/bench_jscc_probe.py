"""Architecture probe: which single-layer CIFAR-10 JSCC learns fastest on this machine's CPU budget.

Each variant is the `cifar10-djscc-awgn` recipe (512 symbols, 48 channels, SNR uniform in 0..20 dB
unless the variant says otherwise) trained from scratch for ``--minutes`` of wall time on one
thread (the cosine schedule follows the wall clock, so every run ends annealed), then evaluated at
0, 10 and 20 dB on the first ``--eval-count`` test images (the first probes at 10 dB only; their
best checkpoints are rescored at 0, 10 and 20 dB when the run folder is still there). Runs go
``--parallel`` at a time (one per core).
Writes ``bench/results/jscc_probe.json``: per variant the PSNR/accuracy after each epoch and at the end.

    python bench/bench_jscc_probe.py --cifar-root DATA
    python bench/bench_jscc_probe.py --from-logs "linear skip=runs/probe-E.log"   # parse earlier runs
    python bench/bench_jscc_probe.py --from-logs ... --extra-runs "28 epochs=runs/X"  # and score other runs
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import write_json

_V3 = ["--linear-skip", "--loss", "psnr"]  # the zoo's v3 recipe
VARIANTS: dict[str, list[str]] = {
    "plain (zoo v1 architecture)": [],
    "plain trained at fixed 10 dB": ["--snr-min", "10", "--snr-max", "10"],
    "linear skip": ["--linear-skip"],
    "linear skip and PSNR loss": _V3,
    "64 channels and half-resolution blocks": ["--enc-width", "64", "--dec-width", "64", "--hires-blocks", "1"],
    "linear skip + PSNR loss + clamped output": [*_V3, "--output", "clamp"],
    "linear skip + PSNR loss + gain pilot": [*_V3, "--gain-pilot"],
    "linear skip + PSNR loss + gain pilot + clamped output": [*_V3, "--gain-pilot", "--output", "clamp"],
}

_EPOCH = re.compile(r"epoch ([\d.]+)/\d+ .*? at \[([^\]]*)\] dB: \[\[([^\]]*)\]\]; acc \[\[([^\]]*)\]\]")


def _command(root: str, out: Path, minutes: float, eval_count: int, extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "semcom", "train", "--dataset", "cifar10", "--data-root", root,
        "--arch", "conv", "--enc-width", "48", "--dec-width", "48", "--layers", "1", "--layer-symbols", "512",
        "--channel", "awgn", "--snr-min", "0", "--snr-max", "20", "--snr-info", "--epochs", "40",
        "--batch-size", "64", "--lr", "1e-3", "--augment-flip", "--threads", "1", "--max-minutes", str(minutes),
        "--eval-count", str(eval_count), "--eval-snrs", "0,10,20", "--final-eval-count", "0", "--no-progress",
        "--restart", "--out", str(out), *extra,
    ]  # fmt: skip


def _curve(text: str) -> list[dict]:
    """The per-epoch evaluation lines of a single-layer ``semcom train`` log: PSNR and accuracy by SNR."""

    def by_snr(snrs: str, values: str) -> dict[str, float]:
        return {f"{float(s):g} dB": float(v) for s, v in zip(snrs.split(","), values.split(","), strict=True)}

    return [
        {"epochs": float(e), "psnr_db": by_snr(s, p), "accuracy": by_snr(s, a)} for e, s, p, a in _EPOCH.findall(text)
    ]


def _rescore(run_dir: Path, root: str, count: int) -> dict | None:
    """PSNR/accuracy of the run's best checkpoint at 0, 10 and 20 dB on the first ``count`` test images."""
    if not (run_dir / "best.safetensors").is_file():
        return None
    import torch

    from semcom.channels import build_channel
    from semcom.data import load_dataset
    from semcom.jscc import load_checkpoint
    from semcom.jscc.train import evaluate

    torch.set_num_threads(1)
    ds = load_dataset("cifar10", "test", root=root).subset(count)
    m = evaluate(load_checkpoint(run_dir / "best.safetensors"), ds, build_channel("awgn", seed=0), [0.0, 10.0, 20.0])
    snrs = [f"{s:g} dB" for s in m["snr_db"]]
    return {
        "psnr_db": dict(zip(snrs, m["psnr_db"][0], strict=True)),
        "accuracy": dict(zip(snrs, m["accuracy"][0], strict=True)),
    }


def _record(name: str, cmd: list[str] | None, returncode: int | None, text: str, best: dict | None = None) -> dict:
    curve = _curve(text)
    final = curve[-1] if curve else {}
    print(f"{name:40s} {final.get('epochs', '-')!s:>6} epochs  PSNR {final.get('psnr_db', '-')}  best: {best}")
    return {
        "command": " ".join(cmd[1:]) if cmd else None,
        "returncode": returncode,
        "curve": curve,
        "final": final or None,
        "best_rescored": best,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cifar-root", default=os.environ.get("SEMCOM_DATA"),
                    help="data root holding cifar-10-batches-bin/ (default: $SEMCOM_DATA)")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--eval-count", type=int, default=500)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--variants", default="", help="comma-separated variant names (default: all)")
    ap.add_argument("--from-logs", default="", help="'variant=log,...': parse logs of runs made earlier instead")
    ap.add_argument("--extra-runs", default="", help="'label=dir,...': also score these runs (with --from-logs)")
    ap.add_argument("--out", default="jscc_probe", help="result name under bench/results")
    args = ap.parse_args(argv)
    meta = {"minutes_per_run": args.minutes, "parallel": args.parallel, "eval_images": args.eval_count}
    if args.from_logs:
        results = {}
        for item in args.from_logs.split(","):
            name, log = item.split("=", 1)  # names hold no "=" or ","
            cmd = _command(args.cifar_root, Path("OUT"), args.minutes, args.eval_count, VARIANTS[name])
            best = _rescore(Path(log).with_suffix(""), args.cifar_root, args.eval_count)
            results[name] = {**_record(name, cmd, None, Path(log).read_text(), best), "log": log}
        for item in filter(None, args.extra_runs.split(",")):
            label, run_dir = item.split("=", 1)
            card = json.loads((Path(run_dir) / "best.json").read_text())
            best = _rescore(Path(run_dir), args.cifar_root, args.eval_count)
            print(f"{label:40s} {card.get('epochs')!s:>6} epochs  best: {best}")
            results[label] = {"command": card.get("command"), "epochs": card.get("epochs"), "best_rescored": best}
        print(f"wrote {write_json(args.out, {**meta, 'source': 'logs of earlier runs', 'results': results})}")
        return 0
    names = [v for v in args.variants.split(",") if v] or list(VARIANTS)
    work = Path(tempfile.mkdtemp(prefix="semcom-probe-"))
    results: dict[str, dict] = {}
    for i in range(0, len(names), args.parallel):
        batch = names[i : i + args.parallel]
        procs = []
        for index, name in enumerate(batch, start=i):
            out, log = work / f"run{index}", work / f"run{index}.log"
            cmd = _command(args.cifar_root, out, args.minutes, args.eval_count, VARIANTS[name])
            with log.open("w") as fh:
                procs.append((name, cmd, out, log, subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)))
        for name, cmd, out, log, proc in procs:
            proc.wait()
            best = _rescore(out, args.cifar_root, args.eval_count)
            results[name] = _record(name, cmd, proc.returncode, log.read_text(), best)
    print(f"wrote {write_json(args.out, {**meta, 'source': 'this run', 'results': results})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
