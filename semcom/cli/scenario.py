"""``semcom run``, ``semcom validate``, ``semcom show`` and ``semcom plot``: thin wrappers.

The work is done by :mod:`semcom.scenarios` and :mod:`semcom.plots`; they are imported inside the
commands so that ``semcom --help`` stays fast (no torch import here).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["plot_cmd", "run_cmd", "show_cmd", "validate_cmd"]

_SCENARIO_HELP = "Scenario file (YAML), or the name of a built-in scenario (see `semcom list scenarios`)."
_RESULTS_HELP = "Results folder (or its results.json)."


_IMAGES_HELP = "Evaluate the first N images of the split instead of the scenario's dataset.images (with --quick: N)."
_SNR_HELP = ("SNRs in dB instead of the scenario's: 0,10,20 or 0:20:5 (start:stop:step) for every user that "
             "sweeps (every user when none does), a single value to fix them, or USER=0,10 for one user "
             "(repeat the option for more). Points of the scenario's sweep draw the same channels as the "
             "full run.")


def _snr_option(texts: list[str] | None) -> list[float] | dict[str, list[float]] | None:
    """``--snr`` texts -> a list for the sweeping users, or ``{user: values}``; None when not given."""
    if not texts:
        return None
    per_user = [t for t in texts if "=" in t]
    if (per_user and len(per_user) != len(texts)) or len(texts) - len(per_user) > 1:
        raise typer.BadParameter("give one list for every sweeping user (--snr 0,10,20), or USER=VALUES for "
                                 "each user you change (--snr far=0,10 --snr near=10,20), not both",
                                 param_hint="--snr")
    if not per_user:
        return _snr_values(texts[0])
    out: dict[str, list[float]] = {}
    for text in per_user:
        user, _, values = text.partition("=")
        if not user.strip():
            raise typer.BadParameter(f"'{text}': give USER=VALUES", param_hint="--snr")
        out[user.strip()] = _snr_values(values)
    return out


def _snr_values(text: str) -> list[float]:
    """``"0,10,20"`` or ``"0:20:5"`` (stop included on the grid) -> SNRs in dB."""
    from pydantic import ValidationError

    expected = f"'{text}': expected numbers such as 0,10,20 or a range start:stop:step"
    try:
        if ":" in text:
            from semcom.scenarios.schema import SnrRange

            start, stop, step = (float(v) for v in text.split(":"))
            return SnrRange(start=start, stop=stop, step=step).values()
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        reason = str(error["msg"]).removeprefix("Value error, ")
        raise typer.BadParameter(f"{expected} ({where + ': ' if where else ''}{reason})",
                                 param_hint="--snr") from None
    except ValueError:
        raise typer.BadParameter(expected, param_hint="--snr") from None
    if not values:
        raise typer.BadParameter(f"'{text}': no SNR given", param_hint="--snr")
    return values


def run_cmd(
    scenario: Annotated[str, typer.Argument(help=_SCENARIO_HELP, show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o",
                                             help="Output folder (default: results/NAME).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Smoke test: few images, few SNR points, one draw "
                                                        "(the scenario's `quick` section).")] = False,
    images: Annotated[int | None, typer.Option("--images", "-n", min=1, help=_IMAGES_HELP)] = None,
    snr: Annotated[list[str] | None, typer.Option("--snr", help=_SNR_HELP, show_default=False)] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Processes running SNR points in "
                                                                        "parallel (same numbers as 1).")] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no table.")] = False,
    data_root: Annotated[Path | None, typer.Option(
        "--data-root", help="Data root (overrides the scenario's dataset.root and $SEMCOM_DATA).")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Discard partial results of an interrupted run "
                                                        "instead of resuming.")] = False,
    device: Annotated[str, typer.Option("--device", help="Torch device, e.g. cpu or cuda.")] = "cpu",
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Torch threads of a serial run "
                                                                         "(default 1, as in each worker, so "
                                                                         "that --workers N gives identical "
                                                                         "numbers).")] = None,
    backend: Annotated[str, typer.Option("--backend", help="local (this machine's processes) or ray (Ray "
                                                            "actors: --workers of them, on a local Ray or "
                                                            "the cluster at --address; same numbers).")] = "local",
    address: Annotated[str | None, typer.Option("--address", help="Ray cluster address for --backend ray "
                                                                  "(default: start a local Ray for this "
                                                                  "run).")] = None,
    codec_workers: Annotated[int, typer.Option("--codec-workers", min=1, help=(
        "Processes that rate-match the SSCC systems' images (for sweeps where the codec is most of the "
        "work, e.g. HEVC-intra): each image always in the same process, whose encode cache then serves "
        "every SNR point; same numbers as 1. Instead of --workers, not with it."))] = 1,
) -> None:
    """Run a scenario: write results.csv, results.json and the plots into the output folder.

    An interrupted run resumes where it stopped when run again with the same output folder.
    --images and --snr run a part of any scenario without editing a copy; they are recorded in
    results.json, and a run with other overrides never resumes this one.

    Example: semcom run quickstart --images 50 --snr 0,10,20 --out results/small
    """
    from semcom.plots import plot_results
    from semcom.scenarios import load_scenario, run_scenario
    from semcom.scenarios.runner import PARTIAL_DIR

    snr_values = _snr_option(snr)
    sc = load_scenario(scenario)
    out_dir = out if out is not None else Path("results") / sc.name
    try:
        result = run_scenario(sc, out_dir, quick=quick, images=images, snr=snr_values, workers=workers,
                              data_root=data_root, device=device, resume=not fresh, quiet=quiet, threads=threads,
                              backend=backend, address=address, codec_workers=codec_workers)
    except KeyboardInterrupt:
        saved = len(list((out_dir / PARTIAL_DIR).glob("point-*.json")))
        typer.secho(f"interrupted: {saved} finished SNR point(s) saved in {out_dir / PARTIAL_DIR}; run the "
                    "same command again to resume", err=True)
        raise typer.Exit(130) from None
    plots = plot_results(out_dir)
    if quiet:
        return
    from rich.console import Console

    from semcom.scenarios.report import results_table

    console = Console()
    console.print(results_table(result.rows, result.metadata))
    for path in [result.csv_path, result.json_path, *plots]:
        console.print(f"wrote {path}", soft_wrap=True)


def validate_cmd(
    scenario: Annotated[str | None, typer.Argument(help=_SCENARIO_HELP, show_default=False)] = None,
    schema: Annotated[bool, typer.Option("--schema", help="Print the JSON Schema of scenario files and "
                                                          "exit.")] = False,
    data_root: Annotated[Path | None, typer.Option("--data-root", help="Data root (overrides the scenario's "
                                                                       "dataset.root).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Check the --quick run instead.")] = False,
    images: Annotated[int | None, typer.Option("--images", "-n", min=1, help=_IMAGES_HELP)] = None,
    snr: Annotated[list[str] | None, typer.Option("--snr", help=_SNR_HELP, show_default=False)] = None,
    file_only: Annotated[bool, typer.Option("--file-only", help="Check the file and the names it uses, without "
                                                                "loading the data and the models (fast; "
                                                                "`run` may still refuse it).")] = False,
) -> None:
    """Check a scenario as `semcom run` would, without running it: errors name the file, line and field.

    Loads the dataset and builds every system, so what `run` would refuse, this refuses; warns about
    what `run` would do silently (fewer images than asked, SNRs outside a model's training range);
    prints the SNR points, the size of the run (images x points x draws x systems) and a rough time
    estimate from timing each system on a few images. Takes the same --quick, --images and --snr as
    `run`. --schema prints the JSON Schema of scenario files.

    Example: semcom validate quickstart --images 100 --snr 0,10,20
    """
    if schema:
        from semcom.scenarios import scenario_json_schema

        typer.echo(json.dumps(scenario_json_schema(), indent=2))
        return
    if scenario is None:
        raise typer.BadParameter("give a scenario file (or --schema)", param_hint="SCENARIO")
    from semcom.scenarios import load_scenario
    from semcom.scenarios.report import describe_scenario

    snr_values = _snr_option(snr)
    sc = load_scenario(scenario)
    if file_only:
        typer.echo(f"ok (file only): {sc.source}")
        typer.echo(describe_scenario(sc))
        return
    import time

    from semcom.scenarios.checks import check_plan, estimate_seconds, format_duration, run_size
    from semcom.scenarios.plan import make_plan
    from semcom.scenarios.report import describe_overrides, describe_points, wrap_lines

    start = time.perf_counter()
    plan = make_plan(sc, quick=quick, images=images, snr=snr_values, data_root=data_root)
    state, notes = check_plan(plan)
    setup = time.perf_counter() - start
    seconds = setup + estimate_seconds(plan, state)
    typer.echo(f"ok: {sc.source}")
    typer.echo(describe_scenario(sc))
    typer.echo(wrap_lines([
        *([f"  override {describe_overrides(plan.overrides)}"] if plan.overrides else []),
        f"  points   {describe_points(plan)}",
        f"  size     {run_size(plan, len(state.images))}",
        f"  time     about {format_duration(seconds)} in one process (a rough guess: each system timed on a "
        "few images at one SNR)",
    ]))
    for note in notes:
        typer.secho(f"warning: {note}", fg=typer.colors.YELLOW, err=True)


def show_cmd(
    results: Annotated[Path, typer.Argument(help=_RESULTS_HELP, show_default=False)],
) -> None:
    """Print a results table in the terminal (mean ± 95% confidence half-width), 80 columns wide.

    Example: semcom show results/quickstart
    """
    from rich.console import Console

    from semcom.scenarios import load_results
    from semcom.scenarios.report import results_table

    rows, meta = load_results(results)
    Console().print(results_table(rows, meta))


def plot_cmd(
    results: Annotated[Path, typer.Argument(help=_RESULTS_HELP, show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write the plots (default: the "
                                                                 "results folder).")] = None,
    formats: Annotated[str, typer.Option("--format", help="Comma-separated file formats.")] = "png,pdf",
    users: Annotated[str | None, typer.Option("--users", help="Comma-separated users to draw, in this order "
                                                              "(default: all; more than 3 become panels, at "
                                                              "most 16).")] = None,
) -> None:
    """Draw the figures of a results folder (PNG and PDF by default).

    psnr_vs_snr, accuracy_vs_snr: colour by system, line style by layer,
    hollow markers where images were lost, a panel per user beyond 3 users.
    sscc_cliff: SSCC systems at several fixed MCSs (semcom run sscc-cliff).
    image_grid: the first test images as each system and layer rebuilt them.

    Example: semcom plot results/quickstart --format png --users rx
    """
    from semcom.plots import plot_results

    chosen = [u.strip() for u in users.split(",") if u.strip()] if users else None
    for path in plot_results(results, out, [f.strip() for f in formats.split(",") if f.strip()], users=chosen):
        typer.echo(f"wrote {path}")
