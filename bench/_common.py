"""Shared bits for benchmark scripts: machine description, JSON output, the recorded command line,
per-seed table cells and the command-line options of the receiver benches."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    import torch

    return {
        "date": datetime.date.today().isoformat(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2))
    return path


def command_line(hide_data_root: bool = True) -> str:
    """The command as typed (``python bench/X.py ...``); with ``hide_data_root`` the value of
    ``--data-root`` is written as ``DATA`` (it names a folder on one machine)."""
    words = list(sys.argv[1:])
    if hide_data_root:
        for i, word in enumerate(words):
            if word == "--data-root" and i + 1 < len(words):
                words[i + 1] = "DATA"
            elif word.startswith("--data-root="):
                words[i] = "--data-root=DATA"
    return " ".join(["python", Path(sys.argv[0]).as_posix(), *words])


def seed_cell(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    """A table cell: the mean over seeds ± half their range, times ``scale``; one seed: the value
    alone; none: ``—``."""
    if not values:
        return "—"
    mean = statistics.fmean(values) * scale
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ±{(max(values) - min(values)) * scale / 2:.{digits}f}"


def add_seed_options(parser: argparse.ArgumentParser, seeds: list[int]) -> None:
    """``--seeds`` (default ``seeds``) and ``--threads`` (torch threads, default 1)."""
    parser.add_argument("--seeds", type=int, nargs="+", default=seeds)
    parser.add_argument("--threads", type=int, default=1)


def add_output_options(parser: argparse.ArgumentParser, out: str, merge: str | None = None) -> None:
    """``--out`` (the JSON file, default ``out``), ``--merge`` (only where ``merge``, its help, is
    given) and ``--table`` (print the tables of a JSON file and exit)."""
    parser.add_argument("--out", default=out)
    if merge is not None:
        parser.add_argument("--merge", action="store_true", help=merge)
    parser.add_argument("--table", default=None, help="print the tables of this JSON file and exit")


def run_or_table(args: argparse.Namespace, run: Callable[[argparse.Namespace], dict[str, Any]],
                 tables: Callable[[dict[str, Any]], str]) -> None:
    """Print the tables of the JSON file ``args.table`` if given, else of a fresh ``run(args)``."""
    if args.table:
        print(tables(json.loads(Path(args.table).read_text())))
        return
    print(tables(run(args)))
