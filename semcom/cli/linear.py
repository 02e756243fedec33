"""``semcom fit-linear``: fit the linear analog code (SoftCast / KLT) on a training split; thin wrapper."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

__all__ = ["fit_linear_cmd"]


def fit_linear_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="checkpoint to write (.safetensors; its card beside it)"),
    dataset: str = typer.Option("mnist", help="mnist, fashion-mnist or cifar10"),
    data_root: str | None = typer.Option(None, help="data root holding the official dataset files"),
    layers: int = typer.Option(3, help="number of layers L"),
    rho: str = typer.Option("1/6", help="total bandwidth ratio k/n"),
    layer_symbols: str | None = typer.Option(None, help="explicit symbols per layer, e.g. 192,160,160"),
    transform: str = typer.Option("klt", help="klt (whole-image Karhunen-Loeve) or dct (SoftCast's transform)"),
    allocation: str = typer.Option("mmse", help="mmse (MSE-optimal at the design SNR) or softcast (lambda^-1/4)"),
    design_snr: str = typer.Option("10", help="SNR in dB the mmse allocation is made for, or 'receiver'"),
    power: str = typer.Option("average", help="average (over images) or per-image (a pilot symbol per layer)"),
    validation: int = typer.Option(2000, help="training images held out (as `semcom train` does), 0: none"),
    validation_seed: int = typer.Option(0, help="seed of the validation draw"),
    exclude_mnist_sample: bool = typer.Option(False, help="leave out the 5,000 offline-sample images (MNIST)"),
) -> None:
    """Fit a linear analog code on the training images and save it (seconds; no training loop).

    Example: semcom fit-linear --dataset mnist --data-root DATA --exclude-mnist-sample -o mnist-klt.safetensors
    """
    from semcom.analog.code import LinearCodeConfig
    from semcom.analog.store import fit_linear_code, save_linear_code
    from semcom.cli.options import comma_list
    from semcom.data import load_dataset, without_mnist_sample
    from semcom.errors import SemcomError
    from semcom.jscc.config import ArchitectureOptions

    try:
        ds = load_dataset(dataset, "train", root=data_root)
        if exclude_mnist_sample:
            ds = without_mnist_sample(ds)
        if validation:
            ds, _ = ds.split_validation(validation, validation_seed)
        explicit = [int(v) for v in comma_list(layer_symbols or "")]
        sizing = ArchitectureOptions(layers=layers, rho=rho, layer_symbols=explicit)
        sizes = sizing.layer_sizes(ds.shape)  # as `semcom train` sizes its layers
        design = None if design_snr.strip().lower() == "receiver" else float(design_snr)
        config = LinearCodeConfig(ds.shape, sizes, transform=transform, allocation=allocation,
                                  design_snr_db=design, power=power)
    except ValueError as exc:
        raise SemcomError(f"invalid options: {exc}") from None
    code, card = fit_linear_code(ds, config)
    card["command"] = "semcom fit-linear " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    card["dataset"]["validation_held_out"] = {"images": validation, "seed": validation_seed}
    path = save_linear_code(code, out, card)
    typer.echo(f"wrote {path} ({card['energy_kept']:.2%} of the training variance kept, fitted in "
               f"{card['fit_seconds']} s)")
