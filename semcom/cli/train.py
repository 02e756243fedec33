"""``semcom train``: train a (multi-resolution) deep JSCC model; thin wrapper over semcom.jscc.train.

Every option but ``--config`` and ``--finish`` is a flat field of
:class:`~semcom.jscc.config.TrainConfig`: same name, same default, and the field's description as
its help (the tests check all three). Options typed on the command line override the YAML file,
which overrides the defaults.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import typer

__all__ = ["train_cmd"]

_COMMAND_ONLY = ("config", "finish")  # options that are not training options


def train_cmd(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="YAML file of training options "
        "(keys as the long options, with underscores); options given here override it.",
    ),
    dataset: str = typer.Option("mnist", help="mnist, fashion-mnist or cifar10"),
    data_root: str | None = typer.Option(None, help="data root holding the official dataset files"),
    exclude_mnist_sample: bool = typer.Option(
        False,
        "--exclude-mnist-sample/--keep-mnist-sample",
        help="leave out the 5,000 offline-sample images (MNIST train)",
    ),
    train_count: int | None = typer.Option(None, help="use only the first N training images"),
    layers: int = typer.Option(3, help="number of layers L (1 = single-layer deep JSCC)"),
    rho: str = typer.Option("1/6", help="total bandwidth ratio k/n, e.g. 1/6"),
    layer_symbols: str | None = typer.Option(None, help="explicit symbols per layer, e.g. 192,160,160"),
    arch: str = typer.Option("conv", help="conv, mlp, or anchored (the linear analog code plus learned refinements)"),
    anchor_transform: str = typer.Option("klt", help="anchored: linear code transform, klt or dct"),
    anchor_allocation: str = typer.Option("mmse", help="anchored: power allocation, mmse or softcast"),
    anchor_design_snr: float = typer.Option(10.0, help="anchored: SNR in dB the allocation is made for"),
    anchor_power: str = typer.Option(
        "average", help="anchored: power normalisation, average (over images) or per-image (pilot)"
    ),
    enc_width: int = typer.Option(32, help="encoder channels (conv) / hidden size (mlp)"),
    dec_width: int = typer.Option(32, help="decoder channels (conv) / hidden size (mlp)"),
    enc_blocks: int = typer.Option(1, help="encoder residual blocks at 1/4 resolution (conv)"),
    dec_blocks: int = typer.Option(1, help="residual blocks per decoder at 1/4 resolution (conv)"),
    hires_blocks: int = typer.Option(0, help="residual blocks at 1/2 resolution in encoder and each decoder (conv)"),
    linear_skip: bool = typer.Option(
        False, "--linear-skip/--no-linear-skip", help="linear pixel<->symbol shortcut beside the conv stacks"
    ),
    gain_pilot: bool = typer.Option(
        False, "--gain-pilot/--no-gain-pilot", help="one symbol per layer tells the receiver its power gain"
    ),
    output: str = typer.Option("sigmoid", help="decoder output map: sigmoid or clamp"),
    snr_info: bool = typer.Option(True, "--snr-info/--no-snr-info", help="SNR side info to the decoders"),
    channel: str = typer.Option("awgn", help="channel from `semcom list channels`: awgn, rayleigh, rician"),
    block: str = typer.Option("image", help="how long one fading gain lasts: image, layer or symbol"),
    csi: str = typer.Option("perfect", help="receiver CSI: perfect or none"),
    k_factor: float | None = typer.Option(None, help="Rician K factor (linear, LOS/scattered power); rician only"),
    snr_min: float = typer.Option(0.0, help="training SNR range, lower end in dB"),
    snr_max: float = typer.Option(20.0, help="training SNR range, upper end in dB (= min: fixed)"),
    mode: str = typer.Option("joint", help="joint or successive"),
    loss: str = typer.Option("mse", help="mse, or psnr (every image weighted equally in dB)"),
    freeze_encoder: bool = typer.Option(
        False,
        "--freeze-encoder/--train-encoder",
        help="train the decoders only (the transmitted symbols stay bit-identical; use with --init)",
    ),
    heads_only: bool = typer.Option(
        False,
        "--heads-only/--all-parts",
        help="train only the decoders' semantic heads (images and symbols unchanged; use with --init)",
    ),
    epochs: int = typer.Option(5, help="epochs (per layer in successive mode)"),
    batch_size: int = typer.Option(64, help="batch size"),
    lr: float = typer.Option(1e-3, help="Adam learning rate (cosine decay)"),
    warmup_steps: int = typer.Option(100, help="linear learning-rate warm-up steps"),
    layer_weights: str | None = typer.Option(None, help="MSE weight per layer, e.g. 1,1,1"),
    ce_weight: float = typer.Option(0.01, help="cross-entropy weight of the semantic heads"),
    augment_flip: bool = typer.Option(False, "--augment-flip/--no-augment-flip", help="random horizontal flips"),
    seed: int = typer.Option(0, help="seed of data order, SNR draws and channel"),
    threads: int = typer.Option(2, help="torch CPU threads"),
    out: str = typer.Option("runs/jscc", "--out", "-o", help="run directory for checkpoints"),
    resume: bool = typer.Option(True, "--resume/--restart", help="continue from OUT/latest.* if present"),
    init: str | None = typer.Option(None, help="fine-tune from this checkpoint (.safetensors)"),
    eval_count: int = typer.Option(1000, help="validation images scored after each epoch"),
    validation: int = typer.Option(
        2000, help="training images held out as the validation split (picks the best checkpoint)"
    ),
    validation_seed: int = typer.Option(0, help="seed of the validation draw"),
    device: str = typer.Option("cpu", help="cpu, cuda or auto"),
    eval_snrs: str = typer.Option("0,5,10,15,20", help="evaluation SNRs in dB"),
    final_eval_count: int | None = typer.Option(None, help="test images for the final card (default: all)"),
    max_minutes: float | None = typer.Option(None, help="stop (resumably) before exceeding this wall time"),
    zoo_name: str | None = typer.Option(None, help="also write each new best into the zoo under this name"),
    zoo_dir: str | None = typer.Option(None, help="zoo directory (default: the package's zoo/weights)"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bar"),
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
    from semcom.cli.options import build_config, typed_options
    from semcom.errors import SemcomError
    from semcom.jscc.train import TrainConfig, finish_run, train

    given = typed_options(ctx, ctx.params)
    if finish:
        if "out" not in given:
            raise SemcomError("--finish needs --out, the run directory to finish")
        try:
            card = finish_run(out, zoo_name=zoo_name, zoo_dir=zoo_dir, data_root=data_root)
        except ValueError as exc:
            raise SemcomError(str(exc)) from None
        typer.echo(f"test PSNR by layer: {card['test']['psnr_db']}")
        return
    values = _yaml_options(config) if config is not None else {}
    values.update({k: v for k, v in given.items() if k not in _COMMAND_ONLY})
    cfg = build_config(TrainConfig, values, "training options")
    command = "semcom train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 else None
    best = train(cfg, command=command)
    typer.echo(f"best checkpoint: {best}")


def _yaml_options(path: Path) -> dict[str, Any]:
    """The options of a YAML file (keys as the long options; dashes read as underscores)."""
    import yaml

    from semcom.errors import SemcomError

    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SemcomError(f"{path}: cannot read training config ({exc})") from None
    if not isinstance(loaded, dict):
        raise SemcomError(f"{path}: expected a mapping of training options")
    return {str(k).replace("-", "_"): v for k, v in loaded.items()}
