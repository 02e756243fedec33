"""``semcom train``: train a (multi-resolution) deep JSCC model; thin wrapper over semcom.jscc.train."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import typer

__all__ = ["train_cmd"]


def _int_list(text: str | None) -> list[int] | None:
    return None if not text else [int(v) for v in text.replace(" ", "").split(",") if v]


def _float_list(text: str | None) -> list[float] | None:
    return None if not text else [float(v) for v in text.replace(" ", "").split(",") if v]


def train_cmd(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="YAML file of training options "
        "(keys as the long options, with underscores); options given here override it.",
    ),
    dataset: str | None = typer.Option(None, help="mnist, fashion-mnist or cifar10 [mnist]"),
    data_root: str | None = typer.Option(None, help="data root holding the official dataset files"),
    exclude_mnist_sample: bool | None = typer.Option(
        None,
        "--exclude-mnist-sample/--keep-mnist-sample",
        help="leave out the 5,000 offline-sample images (MNIST train)",
    ),
    train_count: int | None = typer.Option(None, help="use only the first N training images"),
    layers: int | None = typer.Option(None, help="number of layers L (1 = single-layer deep JSCC) [3]"),
    rho: str | None = typer.Option(None, help="total bandwidth ratio k/n, e.g. 1/6 [1/6]"),
    layer_symbols: str | None = typer.Option(None, help="explicit symbols per layer, e.g. 192,160,160"),
    arch: str | None = typer.Option(
        None, help="conv, mlp, or anchored (the linear analog code plus learned refinements) [conv]"
    ),
    anchor_transform: str | None = typer.Option(None, help="anchored: linear code transform, klt or dct [klt]"),
    anchor_allocation: str | None = typer.Option(None, help="anchored: power allocation, mmse or softcast [mmse]"),
    anchor_design_snr: float | None = typer.Option(None, help="anchored: SNR in dB the allocation is made for [10]"),
    anchor_power: str | None = typer.Option(
        None, help="anchored: power normalisation, average (over images) or per-image (pilot) [average]"
    ),
    enc_width: int | None = typer.Option(None, help="encoder channels (conv) / hidden size (mlp) [32]"),
    dec_width: int | None = typer.Option(None, help="decoder channels (conv) / hidden size (mlp) [32]"),
    enc_blocks: int | None = typer.Option(None, help="encoder residual blocks at 1/4 resolution (conv) [1]"),
    dec_blocks: int | None = typer.Option(None, help="residual blocks per decoder at 1/4 resolution (conv) [1]"),
    hires_blocks: int | None = typer.Option(
        None, help="residual blocks at 1/2 resolution in encoder and each decoder (conv) [0]"
    ),
    linear_skip: bool | None = typer.Option(
        None, "--linear-skip/--no-linear-skip", help="linear pixel<->symbol shortcut beside the conv stacks [off]"
    ),
    gain_pilot: bool | None = typer.Option(
        None, "--gain-pilot/--no-gain-pilot", help="one symbol per layer tells the receiver its power gain [off]"
    ),
    output: str | None = typer.Option(None, help="decoder output map: sigmoid or clamp [sigmoid]"),
    snr_info: bool | None = typer.Option(None, "--snr-info/--no-snr-info", help="SNR side info to the decoders [on]"),
    channel: str | None = typer.Option(None, help="awgn, rayleigh or rician [awgn]"),
    block: str | None = typer.Option(None, help="fading block: image, layer or symbol [image]"),
    csi: str | None = typer.Option(None, help="receiver CSI: perfect or none [perfect]"),
    k_factor: float | None = typer.Option(None, help="Rician K factor (linear)"),
    snr_min: float | None = typer.Option(None, help="training SNR range, lower end in dB [0]"),
    snr_max: float | None = typer.Option(None, help="training SNR range, upper end in dB (= min: fixed) [20]"),
    mode: str | None = typer.Option(None, help="joint or successive [joint]"),
    loss: str | None = typer.Option(None, help="mse, or psnr (every image weighted equally in dB) [mse]"),
    freeze_encoder: bool | None = typer.Option(
        None,
        "--freeze-encoder/--train-encoder",
        help="train the decoders only (the transmitted symbols stay bit-identical; use with --init) [train]",
    ),
    heads_only: bool | None = typer.Option(
        None,
        "--heads-only/--all-parts",
        help="train only the decoders' semantic heads (images and symbols unchanged; use with --init) [all]",
    ),
    epochs: int | None = typer.Option(None, help="epochs (per layer in successive mode) [5]"),
    batch_size: int | None = typer.Option(None, help="batch size [64]"),
    lr: float | None = typer.Option(None, help="Adam learning rate (cosine decay) [1e-3]"),
    warmup_steps: int | None = typer.Option(None, help="linear learning-rate warm-up steps [100]"),
    layer_weights: str | None = typer.Option(None, help="MSE weight per layer, e.g. 1,1,1"),
    ce_weight: float | None = typer.Option(None, help="cross-entropy weight of the semantic heads [0.01]"),
    augment_flip: bool | None = typer.Option(None, "--augment-flip/--no-augment-flip", help="random horizontal flips"),
    seed: int | None = typer.Option(None, help="seed of data order, SNR draws and channel [0]"),
    threads: int | None = typer.Option(None, help="torch CPU threads [2]"),
    out: str | None = typer.Option(None, "--out", "-o", help="run directory for checkpoints [runs/jscc]"),
    resume: bool | None = typer.Option(None, "--resume/--restart", help="continue from OUT/latest.* if present [on]"),
    init: str | None = typer.Option(None, help="fine-tune from this checkpoint (.safetensors)"),
    eval_count: int | None = typer.Option(None, help="validation images scored after each epoch [1000]"),
    validation: int | None = typer.Option(
        None, help="training images held out as the validation split (picks the best checkpoint) [2000]"
    ),
    validation_seed: int | None = typer.Option(None, help="seed of the validation draw [0]"),
    device: str | None = typer.Option(None, help="cpu, cuda or auto [cpu]"),
    eval_snrs: str | None = typer.Option(None, help="evaluation SNRs in dB [0,5,10,15,20]"),
    final_eval_count: int | None = typer.Option(None, help="test images for the final card (default: all)"),
    max_minutes: float | None = typer.Option(None, help="stop (resumably) before exceeding this wall time"),
    zoo_name: str | None = typer.Option(None, help="also write each new best into the zoo under this name"),
    zoo_dir: str | None = typer.Option(None, help="zoo directory (default: the package's zoo/weights)"),
    progress: bool | None = typer.Option(None, "--progress/--no-progress", help="progress bar [on]"),
    data_note: str | None = typer.Option(None, help="a sentence for the card about the data (e.g. which copy)"),
    finish: bool = typer.Option(
        False, "--finish", help="no training: score OUT's best checkpoint on the whole test split and write the "
        "numbers into its card (and the zoo copy with --zoo-name); for a run that stopped before its final "
        "evaluation"
    ),
) -> None:
    """Train a multi-resolution deep JSCC model (L layers, decoders D_1..D_L, semantic heads).

    Example: semcom train --dataset mnist --data-root DATA --arch mlp --epochs 10 --out runs/mnist
    """
    from semcom.errors import SemcomError
    from semcom.jscc.train import TrainConfig, finish_run, train

    if finish:
        if out is None:
            raise SemcomError("--finish needs --out, the run directory to finish")
        try:
            card = finish_run(out, zoo_name=zoo_name, zoo_dir=zoo_dir, data_root=data_root)
        except ValueError as exc:
            raise SemcomError(str(exc)) from None
        typer.echo(f"test PSNR by layer: {card['test']['psnr_db']}")
        return

    values: dict[str, Any] = {}
    if config is not None:
        import yaml

        try:
            loaded = yaml.safe_load(config.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SemcomError(f"{config}: cannot read training config ({exc})") from None
        if not isinstance(loaded, dict):
            raise SemcomError(f"{config}: expected a mapping of training options")
        values.update({k.replace("-", "_"): v for k, v in loaded.items()})
    given = {
        "dataset": dataset,
        "data_root": data_root,
        "exclude_mnist_sample": exclude_mnist_sample,
        "train_count": train_count,
        "layers": layers,
        "rho": rho,
        "layer_symbols": _int_list(layer_symbols),
        "arch": arch,
        "anchor_transform": anchor_transform,
        "anchor_allocation": anchor_allocation,
        "anchor_design_snr": anchor_design_snr,
        "anchor_power": anchor_power,
        "enc_width": enc_width,
        "dec_width": dec_width,
        "enc_blocks": enc_blocks,
        "dec_blocks": dec_blocks,
        "hires_blocks": hires_blocks,
        "linear_skip": linear_skip,
        "gain_pilot": gain_pilot,
        "output": output,
        "snr_info": snr_info,
        "channel": channel,
        "block": block,
        "csi": csi,
        "k_factor": k_factor,
        "snr_min": snr_min,
        "snr_max": snr_max,
        "mode": mode,
        "loss": loss,
        "freeze_encoder": freeze_encoder,
        "heads_only": heads_only,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "warmup_steps": warmup_steps,
        "layer_weights": _float_list(layer_weights),
        "ce_weight": ce_weight,
        "augment_flip": augment_flip,
        "seed": seed,
        "threads": threads,
        "out": out,
        "resume": resume,
        "init": init,
        "eval_count": eval_count,
        "validation": validation,
        "validation_seed": validation_seed,
        "device": device,
        "eval_snrs": _float_list(eval_snrs),
        "final_eval_count": final_eval_count,
        "max_minutes": max_minutes,
        "zoo_name": zoo_name,
        "zoo_dir": zoo_dir,
        "progress": progress,
        "data_note": data_note,
    }
    values.update({k: v for k, v in given.items() if v is not None})
    if "rho" in values:
        values["rho"] = str(values["rho"])
    try:
        cfg = TrainConfig.from_dict(values)
        cfg.validate()
    except (ValueError, TypeError) as exc:
        raise SemcomError(f"invalid training options: {exc}") from None
    command = "semcom train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 else None
    best = train(cfg, command=command)
    typer.echo(f"best checkpoint: {best}")
