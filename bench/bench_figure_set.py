"""The paper's whole figure set from the zoo, by one command, with its wall time.

Runs the four ready paper scenarios (MNIST and CIFAR-10, AWGN and Rayleigh block fading: multi-resolution
JSCC per layer, the linear analog code, JPEG and HEVC-intra + 5G LDPC with the best MCS per SNR and
HEVC-intra at capacity) and draws their figures, exactly as

    semcom run paper-mnist-awgn --images N --out OUT/paper-mnist-awgn   (and the three others)

would, then writes the wall time of each scenario and of the whole set to bench/results/NAME.json.
The full test sets are ``--images 10000``. A run that is interrupted resumes where it stopped when the
same command is run again (each scenario's partial results stay in its output folder); the JSON then
marks the scenarios that resumed, whose times cover only the part run last.

    python bench/bench_figure_set.py --images 10000 --data-root DATA --out results/figure-set
    python bench/bench_figure_set.py --images 10000 --backend ray --workers 2 --name figure_set_ray2
    python bench/bench_figure_set.py --images 10000 --codec-workers 2 --name figure_set_codec2

Both datasets must be under the data root (``DATA/mnist`` and ``DATA/cifar-10-batches-bin``, or set
``$SEMCOM_DATA``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from _common import command_line, write_json

SCENARIOS = ("paper-mnist-awgn", "paper-mnist-rayleigh", "paper-cifar10-awgn", "paper-cifar10-rayleigh")


def with_decoder(scenario: Any, decoder: str) -> Any:
    """The scenario with every SSCC system's LDPC decoder set to ``decoder``."""
    doc = scenario.model_dump(mode="json")
    for system in doc["systems"]:
        if system["type"] == "sscc":
            system["decoder"] = decoder
    return type(scenario).model_validate(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10000, help="test images per scenario (10000: the full "
                                                                  "test sets)")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--backend", choices=("local", "ray"), default="local")
    parser.add_argument("--workers", type=int, default=1, help="processes (local) or Ray actors (ray)")
    parser.add_argument("--codec-workers", type=int, default=1, help="processes rate-matching SSCC images (local, "
                                                                     "without --workers)")
    parser.add_argument("--decoder", choices=("sionna", "fast"), default="sionna",
                        help="LDPC decoder of the SSCC systems (default: the reference)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default="results/figure-set", help="one results folder per scenario in here")
    parser.add_argument("--name", default=None, help="JSON name in bench/results (default: figure_set_"
                                                     "BACKEND_WORKERS)")
    args = parser.parse_args()

    from semcom.plots import plot_results
    from semcom.scenarios import load_scenario, run_scenario

    runs: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    for name in args.scenarios:
        scenario = load_scenario(name)
        if args.decoder != "sionna":
            scenario = with_decoder(scenario, args.decoder)
        out = Path(args.out) / name
        print(f"== {name}: {args.images} images, backend {args.backend}, {args.workers} worker(s), "
              f"{args.codec_workers} codec worker(s)", flush=True)
        t0 = time.perf_counter()
        result = run_scenario(scenario, out, images=args.images, workers=args.workers, backend=args.backend,
                              data_root=args.data_root, quiet=False, codec_workers=args.codec_workers)
        t_run = time.perf_counter() - t0
        figures = plot_results(out)
        t_total = time.perf_counter() - t0
        timing = result.metadata["timing"]
        runs.append({"scenario": name, "images": result.metadata["dataset"]["images"],
                     "points": len(result.metadata["points"]), "draws": result.metadata["draws"],
                     "rows": len(result.rows), "run_s": round(t_run, 1), "plots_s": round(t_total - t_run, 1),
                     "wall_s": round(t_total, 1), "resumed_points": timing["resumed_points"],
                     "figures": len(figures)})
        print(f"   {t_run:.0f} s run + {t_total - t_run:.0f} s plots; {len(result.rows)} rows -> {out}", flush=True)
    total = time.perf_counter() - t_all
    name = args.name or f"figure_set_{args.backend}_{args.workers}"
    path = write_json(name, {
        "command": command_line(),
        "images": args.images, "backend": args.backend, "workers": args.workers,
        "codec_workers": args.codec_workers, "decoder": args.decoder,
        "scenarios": runs, "total_wall_s": round(total, 1),
        "resumed": any(r["resumed_points"] for r in runs),
    })
    print(f"whole set: {total / 60:.1f} min -> {path}")


if __name__ == "__main__":
    main()
