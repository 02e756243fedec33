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


def run_cmd(
    scenario: Annotated[str, typer.Argument(help=_SCENARIO_HELP, show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o",
                                             help="Output folder (default: results/NAME).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Smoke test: few images, few SNR points, one draw "
                                                        "(the scenario's `quick` section).")] = False,
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
) -> None:
    """Run a scenario: write results.csv, results.json and the plots into the output folder.

    An interrupted run resumes where it stopped when run again with the same output folder.

    Example: semcom run scenarios/quickstart.yaml --out results/quickstart --workers 2
    """
    from semcom.plots import plot_results
    from semcom.scenarios import load_scenario, run_scenario
    from semcom.scenarios.runner import PARTIAL_DIR

    sc = load_scenario(scenario)
    out_dir = out if out is not None else Path("results") / sc.name
    try:
        result = run_scenario(sc, out_dir, quick=quick, workers=workers, data_root=data_root, device=device,
                              resume=not fresh, quiet=quiet, threads=threads)
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
        console.print(f"wrote {path}")


def validate_cmd(
    scenario: Annotated[str | None, typer.Argument(help=_SCENARIO_HELP, show_default=False)] = None,
    schema: Annotated[bool, typer.Option("--schema", help="Print the JSON Schema of scenario files and "
                                                          "exit.")] = False,
    data_root: Annotated[Path | None, typer.Option("--data-root", help="Data root (overrides the scenario's "
                                                                       "dataset.root).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Check the --quick run instead.")] = False,
    file_only: Annotated[bool, typer.Option("--file-only", help="Check the file and the names it uses, without "
                                                                "loading the data and the models (fast; "
                                                                "`run` may still refuse it).")] = False,
) -> None:
    """Check a scenario as `semcom run` would, without running it: errors name the file, line and field.

    Loads the dataset and builds every system, so what `run` would refuse, this refuses; warns about
    what `run` would do silently (fewer images than asked, SNRs outside a model's training range);
    prints the size of the run. --schema prints the JSON Schema of scenario files.

    Example: semcom validate scenarios/quickstart.yaml
    """
    if schema:
        from semcom.scenarios import scenario_json_schema

        typer.echo(json.dumps(scenario_json_schema(), indent=2))
        return
    if scenario is None:
        raise typer.BadParameter("give a scenario file (or --schema)", param_hint="SCENARIO")
    from semcom.scenarios import load_scenario
    from semcom.scenarios.report import describe_scenario

    sc = load_scenario(scenario)
    if file_only:
        typer.echo(f"ok (file only): {sc.source}")
        typer.echo(describe_scenario(sc))
        return
    from semcom.scenarios.checks import check_plan, run_size
    from semcom.scenarios.plan import make_plan

    plan = make_plan(sc, quick=quick, data_root=data_root)
    state, notes = check_plan(plan)
    typer.echo(f"ok: {sc.source}")
    typer.echo(describe_scenario(sc))
    typer.echo(f"  size     {run_size(plan, len(state.images))}")
    for note in notes:
        typer.secho(f"warning: {note}", fg=typer.colors.YELLOW, err=True)


def show_cmd(
    results: Annotated[Path, typer.Argument(help=_RESULTS_HELP, show_default=False)],
) -> None:
    """Print a results table in the terminal (mean ± 95% confidence half-width).

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
