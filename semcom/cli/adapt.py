"""``semcom adapt``: adapt a trained receiver to a new channel from unlabeled receptions, save a checkpoint.

A thin wrapper over :func:`semcom.receivers.adaptation.target_receptions`,
:func:`~semcom.receivers.adaptation.adapt_receiver`, :func:`~semcom.receivers.evaluate_receiver` and
:func:`~semcom.receivers.adaptation.save_adapted_receiver`; torch is imported inside the command. The
adaptation options are the fields of :class:`~semcom.receivers.adaptation.AdaptConfig` (same names,
defaults and help, which the tests check).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["adapt_cmd"]


def adapt_cmd(
    ctx: typer.Context,
    checkpoint: Annotated[str, typer.Argument(help="Trained receiver checkpoint (.safetensors from `semcom "
                                                   "train-receiver`) or the name of a shipped one.",
                                              show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Adapted checkpoint to write (.safetensors; its card "
                                                          "goes next to it as .json).", show_default=False)],
    model: Annotated[str | None, typer.Option(help="Frozen JSCC model [the one in the checkpoint's card].")] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset whose train-split images are sent over the target "
                                                     "channel (labels unused); its test split tests [the "
                                                     "card's].")] = None,
    data_root: Annotated[str | None, typer.Option(help="Data root holding the dataset files.")] = None,
    channel: Annotated[str, typer.Option(help="Target channel from `semcom list channels`: awgn, rayleigh, "
                                              "rician.")] = "rayleigh",
    block: Annotated[str, typer.Option(help="how long one fading gain lasts: image, layer or symbol")] = "image",
    csi: Annotated[str, typer.Option(help="receiver CSI: perfect or none")] = "perfect",
    k_factor: Annotated[float | None, typer.Option(help="Rician K factor (linear); rician only")] = None,
    snr: Annotated[str, typer.Option(help="Target SNR range in dB, MIN,MAX (drawn uniformly per image); one "
                                          "value: fixed.")] = "0,20",
    images: Annotated[int, typer.Option(min=2, help="Unlabeled target receptions (train-split images).")] = 10000,
    start: Annotated[int, typer.Option(min=0, help="Index of the first train-split image used.")] = 0,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the target receptions.")] = 3,
    batch_size: Annotated[int, typer.Option(min=2, help="Batch size.")] = 128,
    lr: Annotated[float, typer.Option(help="Adam learning rate (student and discriminator).")] = 1e-4,
    seed: Annotated[int, typer.Option(help="Seed of dropout, batch order and discriminator initialisation.")] = 0,
    dropout: Annotated[float, typer.Option(help="Dropout rate added where the receiver has none (MC variance "
                                                "and the student's view).")] = 0.1,
    mc_passes: Annotated[int, typer.Option(help="Monte Carlo dropout passes for the variance split.")] = 10,
    source_fraction: Annotated[float, typer.Option(help="Fraction of the receptions in the source-similar "
                                                        "subset.")] = 0.5,
    source_like: Annotated[str, typer.Option(help="Which end of the variance ranking is source-similar: auto "
                                                  "(the fading-gain oracle decides; high-variance without "
                                                  "fading), low-variance, high-variance.")] = "auto",
    split: Annotated[str, typer.Option(help="How the subsets are made: by MC-dropout variance, or at random "
                                            "(ablation).")] = "variance",
    threshold: Annotated[float, typer.Option(help="Teacher confidence needed for a pseudo-label.")] = 0.9,
    momentum: Annotated[float, typer.Option(help="EMA momentum of the mean teacher.")] = 0.99,
    adversarial_weight: Annotated[float, typer.Option(help="lambda of the gradient-reversal layer (0: no "
                                                           "adversarial alignment).")] = 0.1,
    anchor: Annotated[bool, typer.Option("--anchor/--no-anchor", help="Reverse the gradient through the "
                                         "source-dissimilar receptions only (the source-similar are the "
                                         "anchor).")] = True,
    discriminator_width: Annotated[int, typer.Option(help="Hidden width of the subset discriminator.")] = 64,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps (smoke tests).")] = None,
    eval_images: Annotated[int | None, typer.Option(min=0, help="Test images evaluated on the target channel "
                                                                "for the card (0: none) [the whole test "
                                                                "split].")] = None,
    eval_snrs: Annotated[str | None, typer.Option(help="Test SNRs in dB for the card [MIN, middle and MAX of "
                                                       "--snr].")] = None,
    half: Annotated[bool, typer.Option("--half/--float", help="Store weights as float16 (half the file).")] = False,
) -> None:
    """Adapt a trained receiver to a new channel without source data or labels; write weights and card.

    The receiver's own predictions on the target receptions split them into source-similar and
    -dissimilar (MC-dropout variance); a mean teacher's pseudo-labels and a gradient-reversal
    discriminator on the shared features adapt it. The card records the source checkpoint, the target
    channel, the direction of the split (and the fading-gain oracle behind it), this command and the
    test accuracy on the target channel.

    Example: semcom adapt rx.safetensors --channel rayleigh --snr -5,5 --data-root DATA --out rx-rayleigh.safetensors
    """
    import torch
    from pydantic import ValidationError

    from semcom.channels.spec import ChannelSpec
    from semcom.cli.options import build_config, comma_list, command_line
    from semcom.data import load_dataset
    from semcom.errors import SemcomError
    from semcom.flat_config import describe_errors
    from semcom.receivers import TrainedReceiver, evaluate_receiver, load_encoder, load_receiver
    from semcom.receivers.adaptation import AdaptConfig, adapt_receiver, save_adapted_receiver, target_receptions
    from semcom.receivers.checkpoint import model_sha256
    from semcom.receivers.weighting import make_weighting

    options = {k: v for k, v in ctx.params.items() if k in AdaptConfig.flat_fields()}
    cfg = build_config(AdaptConfig, options, "adaptation options")
    try:
        snr_range = [float(v) for v in comma_list(snr)]
        snrs = None if eval_snrs is None else [float(v) for v in comma_list(eval_snrs)]
    except ValueError:
        raise SemcomError(f"--snr/--eval-snrs: expected numbers separated by commas, got {snr!r} / "
                          f"{eval_snrs!r}") from None
    if len(snr_range) not in (1, 2) or snr_range[0] > snr_range[-1]:
        raise SemcomError(f"--snr: expected MIN,MAX with MIN <= MAX (or one value), got {snr!r}")
    lo, hi = snr_range[0], snr_range[-1]
    if snrs is None:
        snrs = sorted({lo, (lo + hi) / 2, hi})
    try:
        spec = ChannelSpec(type=channel, block=block, csi=csi,
                           k_factor=k_factor if channel != "rician" or k_factor is not None else 1.0)
    except ValidationError as exc:
        raise SemcomError(f"invalid target channel: {describe_errors(exc)}") from None

    receiver, card = load_receiver(checkpoint)
    model_name = model or (card.get("model") or {}).get("name")
    if not model_name:
        raise SemcomError(f"{checkpoint}: its card names no JSCC model; give --model")
    trained_on, given = (card.get("model") or {}).get("sha256"), model_sha256(model_name)
    if trained_on and given and trained_on != given:
        raise SemcomError(f"{checkpoint} was trained on JSCC weights with sha256 {trained_on[:12]}.., but "
                          f"{model_name} has {given[:12]}..; give the model it was trained on (--model)")
    encoder = load_encoder(model_name)
    if tuple(encoder.layer_symbols) != tuple(receiver.layer_symbols):
        raise SemcomError(f"{checkpoint} reads layers of {tuple(receiver.layer_symbols)} symbols but "
                          f"{model_name} sends {tuple(encoder.layer_symbols)}")
    dataset_name = dataset or (card.get("dataset") or {}).get("name")
    if not dataset_name:
        raise SemcomError(f"{checkpoint}: its card names no dataset; give --dataset")
    train = load_dataset(dataset_name, "train", root=data_root)
    if start + images > len(train):
        raise SemcomError(f"--start {start} --images {images}: the {dataset_name} train split has only "
                          f"{len(train)} images")
    index = torch.arange(len(train))
    target = train.subset(keep=(index >= start) & (index < start + images))
    typer.echo(f"adapting {checkpoint} to {spec.describe()} {lo:g}..{hi:g} dB with {len(target)} unlabeled "
               f"receptions ({cfg.epochs} epoch(s))", err=True)
    try:
        receptions = target_receptions(encoder, target, spec, (lo, hi), side_snr=str(card.get("side_snr", "nominal")),
                                       seed=cfg.seed)

        def log(record: dict[str, float]) -> None:
            typer.echo(f"epoch {int(record['epoch'])}/{cfg.epochs}: pseudo-label loss "
                       f"{record['pseudo_label_loss']:.3f} (kept {record['kept']:.2f}), discriminator accuracy "
                       f"{record['discriminator_accuracy']:.2f}", err=True)

        result = adapt_receiver(receiver, receptions, cfg, log=log)
    except ValueError as exc:
        raise SemcomError(f"cannot adapt {checkpoint}: {exc}") from None
    oracle = result.oracle
    typer.echo(f"source-similar: {result.source_like} ({result.source_like_from}"
               + (f", AUC {oracle['auc_far_higher_variance']:.3f}" if oracle else "") + ")", err=True)
    test = None
    if eval_images != 0:
        run = TrainedReceiver(result.receiver, make_weighting("equal", result.receiver.tasks), encoder,
                              {"side_snr": card.get("side_snr", "nominal")})
        typer.echo(f"testing on {eval_images or 'all'} {dataset_name} test images over {spec.describe()} at "
                   f"{', '.join(f'{s:g}' for s in snrs)} dB", err=True)
        rows = evaluate_receiver(run, dataset_name, snrs_db=snrs, channel=spec.type, block=spec.block, csi=spec.csi,
                                 k_factor=1.0 if spec.k_factor is None else spec.k_factor, subset=eval_images,
                                 data_root=data_root)
        test = {"split": "test", "images": rows[0]["images"] if rows else eval_images, "channel": spec.type,
                "rows": rows}
        for row in rows:
            if "accuracy" in row:
                typer.echo(f"  {row['snr_db']:g} dB, layers 1..{row['layer']}: accuracy {row['accuracy']:.4f}",
                           err=True)
    path = save_adapted_receiver(result, out, source_card=card, source_path=checkpoint, encoder=encoder,
                                 receptions=receptions, command=command_line(ctx, "adapt", ["checkpoint"]), test=test,
                                 dtype=torch.float16 if half else torch.float32)
    typer.echo(f"adapted receiver checkpoint: {path}")
