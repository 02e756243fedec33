"""``semcom train-receiver``: train a semantic receiver on a frozen JSCC model and save a checkpoint.

A thin wrapper over :func:`semcom.receivers.train_receiver`, :func:`~semcom.receivers.evaluate_receiver`
and :func:`~semcom.receivers.save_receiver`; torch is imported inside the command. The training
options are the flat fields of :class:`~semcom.receivers.training.ReceiverTrainConfig` (same names,
defaults and help, which the tests check), except ``--snr`` (its ``snr_db``) and ``--width`` (the
receiver's own ``width`` option).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["train_receiver_cmd"]


def _floats(text: str, what: str) -> list[float]:
    from semcom.errors import SemcomError

    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise SemcomError(f"{what}: expected numbers separated by commas, got {text!r}") from None


def train_receiver_cmd(
    ctx: typer.Context,
    receiver: Annotated[str, typer.Argument(help="Receiver from `semcom list receivers`, e.g. per-layer-heads.",
                                            show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write (.safetensors; its card goes "
                                                          "next to it as .json).", show_default=False)],
    model: Annotated[str, typer.Option(help="Frozen JSCC model: zoo name (`semcom models`) or a .safetensors "
                                            "checkpoint.")] = "mnist-mr3-awgn",
    dataset: Annotated[str, typer.Option(help="Dataset (its train split trains, its test split tests).")] = "mnist",
    data_root: Annotated[str | None, typer.Option(help="Data root holding the dataset files.")] = None,
    weighting: Annotated[str, typer.Option(help="Task weighting: equal, uncertainty, gradnorm, pcgrad, "
                                                "mgda-ub.")] = "equal",
    channel: Annotated[str, typer.Option(help="channel from `semcom list channels`: awgn, rayleigh, "
                                              "rician")] = "awgn",
    block: Annotated[str, typer.Option(help="how long one fading gain lasts: image, layer or symbol")] = "image",
    csi: Annotated[str, typer.Option(help="receiver CSI: perfect or none")] = "perfect",
    k_factor: Annotated[float | None, typer.Option(help="Rician K factor (linear, LOS/scattered power); "
                                                        "rician only")] = None,
    snr: Annotated[str, typer.Option(help="Training SNR range in dB, MIN,MAX (drawn uniformly per image); "
                                          "one value: fixed.")] = "0,20",
    side_snr: Annotated[str, typer.Option(help="SNR the receiver is told: nominal or effective.")] = "nominal",
    epochs: Annotated[int, typer.Option(min=1, help="Epochs.")] = 5,
    batch_size: Annotated[int, typer.Option(min=1, help="Batch size.")] = 128,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    width: Annotated[int | None, typer.Option(min=1, help="Hidden width of the receiver [its default].")] = None,
    subset: Annotated[int | None, typer.Option(min=1, help="Train on the first N training images only.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of initialisation, batch order and channel.")] = 0,
    eval_images: Annotated[int | None, typer.Option(min=0, help="Test images evaluated for the card (0: "
                                                                "none) [the whole test split].")] = None,
    eval_snrs: Annotated[str, typer.Option(help="Test SNRs in dB for the card.")] = "0,10,20",
    half: Annotated[bool, typer.Option("--half/--float", help="Store weights as float16 (half the "
                                                              "file).")] = False,
) -> None:
    """Train a semantic receiver on a frozen JSCC model; write weights (.safetensors) and card (.json).

    The card records the JSCC model and its sha256, the training setup, this command and the test accuracy.

    Example: semcom train-receiver per-layer-heads --data-root DATA --epochs 2 --out rx.safetensors
    """
    import torch

    from semcom.cli.options import build_config, command_line
    from semcom.distributed import main_process
    from semcom.errors import SemcomError
    from semcom.receivers import evaluate_receiver, save_receiver, train_receiver
    from semcom.receivers.training import ReceiverTrainConfig

    options = {k: v for k, v in ctx.params.items() if k in ReceiverTrainConfig.flat_fields()}
    options.update(snr_db=snr, receiver_kwargs={} if width is None else {"width": width})
    cfg = build_config(ReceiverTrainConfig, options, "receiver training options", {"snr_db": "snr"})
    snrs = _floats(eval_snrs, "--eval-snrs")
    command = command_line(ctx, "train-receiver", ["receiver"])

    def log(record: dict[str, float]) -> None:
        losses = ", ".join(f"{k} {v:.3f}" for k, v in record.items() if k not in ("epoch", "steps", "seconds"))
        typer.echo(f"epoch {int(record['epoch'])}/{cfg.epochs}: {losses} ({record['seconds']:.1f} s)", err=True)

    lo, hi = cfg.snr_db
    typer.echo(f"training {receiver} on {model} ({dataset}, {cfg.weighting}, {cfg.channel.type} {lo:g}..{hi:g} dB, "
               f"{cfg.epochs} epoch(s))", err=True)
    try:
        run = train_receiver(receiver, model, dataset, cfg, log=log)
    except (ValueError, TypeError) as exc:
        raise SemcomError(f"cannot train receiver '{receiver}': {exc}") from None
    if not main_process():  # under torchrun, rank 0 alone tests the receiver and writes it
        return
    test = None
    if eval_images != 0:
        n = eval_images
        typer.echo(f"testing on {n or 'all'} {dataset} test images at {', '.join(f'{s:g}' for s in snrs)} dB",
                   err=True)
        spec = cfg.channel
        rows = evaluate_receiver(run, dataset, snrs_db=snrs, channel=spec.type, block=spec.block, csi=spec.csi,
                                 k_factor=1.0 if spec.k_factor is None else spec.k_factor, subset=n,
                                 data_root=data_root)
        test = {"split": "test", "images": rows[0]["images"] if rows else n, "channel": spec.type, "rows": rows}
        for row in rows:
            if "accuracy" in row:
                typer.echo(f"  {row['snr_db']:g} dB, layers 1..{row['layer']}: accuracy {row['accuracy']:.4f}",
                           err=True)
    path = save_receiver(run, out, command=command, test=test,
                         dtype=torch.float16 if half else torch.float32)
    typer.echo(f"receiver checkpoint: {path}")
