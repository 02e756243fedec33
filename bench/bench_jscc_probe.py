"""Architecture probe: which single-layer CIFAR-10 JSCC learns fastest on this machine's CPU budget.

Each variant is the `cifar10-djscc-awgn` recipe (512 symbols, 48 channels, SNR uniform in 0..20 dB
unless the variant says otherwise) trained from scratch for ``--minutes`` of wall time on one
thread (the cosine schedule follows the wall clock, so every run ends annealed), then evaluated at
10 dB on the first ``--eval-count`` test images. Runs go ``--parallel`` at a time (one per core).
Writes ``bench/results/jscc_probe.json``: per variant the PSNR/accuracy after each epoch and at the end.

    python bench/bench_jscc_probe.py --cifar-root ~/.cache/semcom-data
    python bench/bench_jscc_probe.py --from-logs "linear skip=runs/probe-E.log"   # parse earlier runs
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import write_json

VARIANTS: dict[str, list[str]] = {
    "plain (zoo v1 architecture)": [],
    "plain trained at fixed 10 dB": ["--snr-min", "10", "--snr-max", "10"],
    "linear skip": ["--linear-skip"],
    "64 channels and half-resolution blocks": ["--enc-width", "64", "--dec-width", "64", "--hires-blocks", "1"],
}

_EPOCH = re.compile(r"epoch ([\d.]+)/\d+ .*?\[\[([\d.]+)\]\]; acc \[\[([\d.]+)\]\]")


def _command(root: str, out: Path, minutes: float, eval_count: int, extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "semcom", "train", "--dataset", "cifar10", "--data-root", root,
        "--arch", "conv", "--enc-width", "48", "--dec-width", "48", "--layers", "1", "--layer-symbols", "512",
        "--channel", "awgn", "--snr-min", "0", "--snr-max", "20", "--snr-info", "--epochs", "40",
        "--batch-size", "64", "--lr", "1e-3", "--augment-flip", "--threads", "1", "--max-minutes", str(minutes),
        "--eval-count", str(eval_count), "--eval-snrs", "10", "--final-eval-count", "0", "--no-progress",
        "--restart", "--out", str(out), *extra,
    ]  # fmt: skip


def _curve(text: str) -> list[dict[str, float]]:
    """The per-epoch evaluation lines of a ``semcom train`` log (single SNR, single layer)."""
    return [
        {"epochs": float(e), "psnr_db_10db": float(p), "accuracy_10db": float(a)} for e, p, a in _EPOCH.findall(text)
    ]


def _record(name: str, cmd: list[str] | None, returncode: int | None, text: str) -> dict:
    curve = _curve(text)
    final = curve[-1] if curve else {}
    print(f"{name:40s} {final.get('epochs', '-')!s:>6} epochs  {final.get('psnr_db_10db', '-')} dB at 10 dB")
    return {
        "command": " ".join(cmd[1:]) if cmd else None,
        "returncode": returncode,
        "curve": curve,
        "final": final or None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cifar-root", default=str(Path.home() / ".cache" / "semcom-data"))
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--eval-count", type=int, default=500)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--variants", default="", help="comma-separated variant names (default: all)")
    ap.add_argument("--from-logs", default="", help="'variant=log,...': parse logs of runs made earlier instead")
    ap.add_argument("--out", default="jscc_probe", help="result name under bench/results")
    args = ap.parse_args(argv)
    meta = {"minutes_per_run": args.minutes, "parallel": args.parallel, "eval_images": args.eval_count}
    if args.from_logs:
        results = {}
        for item in args.from_logs.split(","):
            name, log = item.split("=", 1)  # names hold no "=" or ","
            cmd = _command(args.cifar_root, Path("OUT"), args.minutes, args.eval_count, VARIANTS[name])
            results[name] = {**_record(name, cmd, None, Path(log).read_text()), "log": log}
        print(f"wrote {write_json(args.out, {**meta, 'source': 'logs of earlier runs', 'results': results})}")
        return 0
    names = [v for v in args.variants.split(",") if v] or list(VARIANTS)
    work = Path(tempfile.mkdtemp(prefix="semcom-probe-"))
    results: dict[str, dict] = {}
    for i in range(0, len(names), args.parallel):
        batch = names[i : i + args.parallel]
        procs = []
        for j, name in enumerate(batch):
            out = work / f"run{i + j}"
            cmd = _command(args.cifar_root, out, args.minutes, args.eval_count, VARIANTS[name])
            log = (work / f"run{i + j}.log").open("w")
            procs.append((name, cmd, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)))
        for name, cmd, proc in procs:
            proc.wait()
            text = (work / f"run{names.index(name)}.log").read_text()
            results[name] = _record(name, cmd, proc.returncode, text)
    print(f"wrote {write_json(args.out, {**meta, 'source': 'this run', 'results': results})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
