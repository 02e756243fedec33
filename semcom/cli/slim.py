"""``semcom slim``: run a slimmable receiver at a compute budget and task preferences, no retraining.

A thin wrapper over :func:`semcom.receivers.slimmable_training.open_slimmable` and
:func:`~semcom.receivers.slimmable_training.evaluate_control`: it prints the configuration the search
chooses, its FLOPs and, unless ``--images 0``, its measured accuracy and PSNR. torch is imported
inside the command.
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["parse_preferences", "slim_cmd"]


def parse_preferences(text: str) -> dict[str, float]:
    """``"class=2,image=1"`` -> ``{"class": 2.0, "image": 1.0}`` (empty text: no preferences)."""
    from semcom.errors import SemcomError

    out: dict[str, float] = {}
    for item in (t for t in text.replace(" ", "").split(",") if t):
        kind, sep, weight = item.partition("=")
        try:
            if not sep or not kind:
                raise ValueError
            out[kind] = float(weight)
        except ValueError:
            raise SemcomError(f"--prefer: expected KIND=WEIGHT pairs separated by commas (e.g. class=2,image=1), "
                              f"got {item!r}") from None
    return out


def slim_cmd(
    checkpoint: Annotated[str, typer.Argument(help="Slimmable receiver checkpoint (.safetensors) made by "
                                                   "`semcom train-receiver slimmable`.", show_default=False)],
    mflops: Annotated[float | None, typer.Option(help="Compute budget of the receiver, MFLOPs per image "
                                                      "[no limit].")] = None,
    prefer: Annotated[str, typer.Option(help="Task preferences KIND=WEIGHT,..., e.g. class=2,image=1; tasks not "
                                             "named weigh 1.")] = "",
    priority: Annotated[str, typer.Option(help="What stays wide when the budget is tight: decoders (the preferred "
                                               "task's first; the paper's rule) or trunk.")] = "decoders",
    model: Annotated[str | None, typer.Option(help="Frozen JSCC model the receiver reads [the one its card "
                                                   "names].")] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset whose test split measures it [the card's].")] = None,
    data_root: Annotated[str | None, typer.Option(help="Data root holding the dataset files.")] = None,
    images: Annotated[int, typer.Option(min=0, help="Test images measured (0: none, only the configuration "
                                                    "and its FLOPs).")] = 1000,
    snr: Annotated[str, typer.Option(help="Test SNRs in dB, comma-separated.")] = "10",
    channel: Annotated[str, typer.Option(help="Test channel: awgn, rayleigh or rician (one gain per image, "
                                              "perfect CSI).")] = "awgn",
    seed: Annotated[int, typer.Option(help="Seed of the test channel.")] = 1234,
) -> None:
    """Run a slimmable receiver at a compute budget and task preferences: the configuration, its FLOPs, its scores.

    Example: semcom slim rx.safetensors --mflops 0.15 --prefer class=2,image=1 --data-root DATA
    """
    from semcom.errors import SemcomError
    from semcom.receivers.slimmable import PRIORITIES
    from semcom.receivers.slimmable_training import evaluate_control, open_slimmable

    preferences = parse_preferences(prefer)
    if priority not in PRIORITIES:
        raise SemcomError(f"--priority: expected one of {', '.join(PRIORITIES)}, got {priority!r}")
    try:
        snrs = [float(v) for v in snr.replace(" ", "").split(",") if v]
    except ValueError:
        raise SemcomError(f"--snr: expected numbers separated by commas, got {snr!r}") from None
    trained = open_slimmable(checkpoint, model)
    name = dataset or trained.config.get("dataset") or "mnist"
    try:
        result = evaluate_control(trained, mflops, preferences, name if images else None, snrs,
                                  priority,
                                  channel=channel, subset=images, data_root=data_root, seed=seed)
    except ValueError as exc:
        raise SemcomError(f"{checkpoint}: {exc}") from None
    units = ", ".join(f"{k} {v}" for k, v in result["units"].items())
    low, high = result["mflops_range"]
    budget = "no limit" if mflops is None else f"budget {mflops:g}"
    typer.echo(f"configuration: {', '.join(f'{k} {v:g}' for k, v in result['configuration'].items())} "
               f"(units: {units})")
    typer.echo(f"compute: {result['mflops']:.4f} MFLOPs per image ({budget}; this receiver spans "
               f"{low:.4f}..{high:.4f})")
    for row in result["rows"]:
        typer.echo(f"{row['snr_db']:g} dB {channel}: accuracy {row['accuracy']:.4f}, PSNR {row['psnr_db']:.2f} dB "
                   f"({row['images']} {name} test images)")
