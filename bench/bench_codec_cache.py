"""What the run's codec encode cache saves: encodes and seconds of a scenario, with and without it.

Runs one scenario (serially, in this process) three ways and checks that the tables are identical:

* ``off``: no cache (``SEMCOM_CODEC_CACHE_MB=0``): every rate-matching probe encodes;
* ``per quality``: the cache keyed by (codec, image, quality), HEVC quality twins encoded apart;
* ``default``: the cache as shipped, which also encodes each pair of HEVC qualities that libheif maps
  onto one x265 rate factor once.

Encodes are counted (deterministic: the same on any machine); seconds are wall time of the whole
run, the three modes interleaved ``--repeats`` times, best repeat reported.

    python bench/bench_codec_cache.py --scenario paper-cifar10-rayleigh --images 20 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from _common import command_line, write_json

MODES = ("off", "per quality", "default")


def run_once(scenario: str, images: int, mode: str) -> tuple[list[dict[str, Any]], int, float, int]:
    """One run of ``scenario`` in ``mode``: its rows, the codec encodes it made, its wall time and the bytes
    of payloads its cache held at the end."""
    from semcom.scenarios import cache as run_cache
    from semcom.scenarios import load_scenario, run_scenario
    from semcom.scenarios.plan import make_plan
    from semcom.sscc.codecs.base import ImageCodec
    from semcom.sscc.codecs.hevc_intra import HeifCodec

    run_cache._PROCESS_CACHE = None  # systems (and their codec cache) built afresh for this mode
    os.environ["SEMCOM_CODEC_CACHE_MB"] = "0" if mode == "off" else "256"
    HeifCodec._paired_qualities = False if mode == "per quality" else None
    encodes = 0
    real = ImageCodec._encode_payload

    def counted(self: ImageCodec, image: Any, quality: int) -> bytes:
        nonlocal encodes
        encodes += 1
        return real(self, image, quality)

    ImageCodec._encode_payload = counted  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        result = run_scenario(scenario, images=images)
        seconds = time.perf_counter() - t0
        state = run_cache.process_cache().state(make_plan(load_scenario(scenario), images=images))
        caches = {id(c): c for s in state.systems.values() if (c := getattr(getattr(s, "codec", None),
                                                                            "encode_cache", None)) is not None}
        held = sum(c.size_bytes for c in caches.values())
    finally:
        ImageCodec._encode_payload = real  # type: ignore[method-assign]
        HeifCodec._paired_qualities = None
    return result.rows, encodes, seconds, held


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="paper-cifar10-rayleigh")
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--name", default="codec_cache", help="JSON name in bench/results")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    seconds: dict[str, list[float]] = {m: [] for m in MODES}
    encodes: dict[str, int] = {}
    held: dict[str, int] = {}
    rows: dict[str, str] = {}
    for _ in range(args.repeats):
        for mode in MODES:
            table, n, s, held[mode] = run_once(args.scenario, args.images, mode)
            seconds[mode].append(s)
            encodes[mode] = n
            rows[mode] = repr(table)
    identical = len(set(rows.values())) == 1
    print(f"{args.scenario}, {args.images} images; identical tables: {identical}")
    print(f"{'cache':<12} {'encodes':>8} {'per image':>10} {'best s':>8} {'speed-up':>9} {'KB held/image':>14}")
    best = {m: min(v) for m, v in seconds.items()}
    for mode in MODES:
        print(f"{mode:<12} {encodes[mode]:>8} {encodes[mode] / args.images:>10.1f} {best[mode]:>8.1f} "
              f"{best['off'] / best[mode]:>8.2f}x {held[mode] / 1024 / args.images:>14.1f}")
    path = write_json(args.name, {"command": command_line(), "scenario": args.scenario, "images": args.images,
                                  "repeats": args.repeats, "identical_tables": identical, "encodes": encodes,
                                  "cache_bytes_held": held,
                                  "seconds": seconds, "best_seconds": best})
    print(f"-> {path}")


if __name__ == "__main__":
    main()
