"""Train and evaluate a semantic receiver on a frozen JSCC encoder.

The encoder is frozen, so its symbols are computed once per image (:func:`encode_dataset`); each
step then draws fresh channel noise and gains. The receiver's input follows the JSCC decoders'
convention (:func:`semcom.jscc.model.symbol_estimate`): with perfect CSI the LMMSE symbol estimate
``conj(h) y / (|h|^2 + N0)``, without CSI the raw ``y``.

>>> from semcom.receivers import train_receiver, evaluate_receiver
>>> run = train_receiver("per-layer-heads", "mnist-mr3-awgn", "mnist", epochs=2)   # doctest: +SKIP
>>> evaluate_receiver(run, "mnist", snrs_db=[0, 10, 20])                           # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import torch
from pydantic import Field, field_validator

from semcom.channels.base import BlockLength, Channel, ChannelOutput, Csi
from semcom.channels.spec import ChannelSpec
from semcom.data import ImageDataset, load_dataset
from semcom.distributed import SINGLE, ProcessGroup, process_group
from semcom.evaluation import StreamPerSnr, evaluate_system
from semcom.flat_config import FlatConfig
from semcom.jscc.model import symbol_estimate
from semcom.jscc.zoo import open_model
from semcom.metrics import accuracy
from semcom.receivers.base import SNR_SCALE_DB, Received, Receiver, Targets, coarse_labels
from semcom.receivers.calibration import expected_calibration_error
from semcom.receivers.checkpoint import TrainedReceiver
from semcom.receivers.checkpoint import model_sha256 as _model_sha256  # of the file as loaded
from semcom.receivers.concepts import COARSE_CONCEPTS
from semcom.receivers.registry import RECEIVERS
from semcom.receivers.weighting import Weighting, make_weighting
from semcom.systems import LayerOutput

__all__ = [
    "Encoder",
    "ReceiverTrainConfig",
    "TrainedReceiver",
    "build_receiver",
    "effective_snr_db",
    "encode_dataset",
    "evaluate_receiver",
    "layer_estimates",
    "load_encoder",
    "receive",
    "train_receiver",
]


class Encoder(Protocol):
    """What a receiver needs from a transmitter: ``encode`` and the layer sizes."""

    @property
    def layer_symbols(self) -> tuple[int, ...]: ...

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, H, W]`` -> symbols ``[B, k_1 + .. + k_L]`` complex (unit power per layer)."""
        ...


def load_encoder(model: str | Path | Any) -> Any:
    """A frozen JSCC encoder from a zoo name, a ``.safetensors`` checkpoint path or a model object.

    Names and paths are told apart by :func:`semcom.storage.resolve_weights`; the model is
    loaded by :func:`semcom.jscc.zoo.open_model` (a plug-in's model name works too).
    """
    if isinstance(model, str | Path):
        model, _ = open_model(model)
    if not hasattr(model, "encode") or not hasattr(model, "layer_symbols"):
        raise TypeError(f"{type(model).__name__} is not a JSCC encoder (needs .encode and .layer_symbols)")
    if isinstance(model, torch.nn.Module):
        model.eval().requires_grad_(False)
    return model


@torch.no_grad()
def encode_dataset(encoder: Encoder, dataset: ImageDataset, batch_size: int = 500) -> torch.Tensor:
    """The clean symbols of every image, ``[N, k_1 + .. + k_L]`` complex (the encoder is frozen)."""
    return torch.cat([encoder.encode(images) for images, _ in dataset.batches(batch_size)])


def _split(symbols: torch.Tensor, sizes: Sequence[int]) -> list[torch.Tensor]:
    return list(torch.split(symbols, list(sizes), dim=1))


def layer_estimates(out: ChannelOutput, layer_symbols: Sequence[int]) -> list[torch.Tensor]:
    """The receiver's symbol estimates of a channel output, one ``[B, k_i]`` complex tensor per layer.

    The estimates are the JSCC decoders' (:func:`semcom.jscc.model.symbol_estimate`): LMMSE with
    perfect CSI, the raw ``y`` without.
    """
    return _split(symbol_estimate(out), layer_symbols)


def effective_snr_db(out: ChannelOutput, snr_db: torch.Tensor) -> torch.Tensor:
    """Per-image effective SNR in dB, ``[B]``: nominal ``snr_db`` + 10 log10 mean |h|^2 (AWGN: the nominal)."""
    gain = (out.h.real.square() + out.h.imag.square()).mean(dim=1)
    return snr_db + 10.0 * torch.log10(gain.clamp_min(1e-6))


def receive(
    symbols: torch.Tensor,
    channel: Channel,
    snr_db: torch.Tensor,
    layer_symbols: Sequence[int],
    partner_symbols: torch.Tensor | None = None,
    side_snr: str = "nominal",
) -> tuple[Received, torch.Tensor, list[torch.Tensor] | None]:
    """Send ``symbols`` ``[B, n]`` through ``channel`` at ``snr_db`` ``[B]``.

    ``side_snr`` is the SNR the receiver is told (:attr:`Received.snr_db`): ``"nominal"`` (the
    link's Es/N0, the default) or ``"effective"`` (``|h|^2 / N0`` averaged over the image, in dB;
    needs perfect CSI, as the JSCC decoders get it).

    Returns the receiver's view, the effective SNR per image (dB) and, when ``partner_symbols`` are
    given, the view of those symbols sent through the *same* channel realisation (the same gains
    ``h`` and noise ``n``: ``y' = h x' + n``), as for hard-negative pairs.
    """
    sizes = list(layer_symbols)
    n = sum(sizes)
    if side_snr not in ("nominal", "effective"):
        raise ValueError(f"side_snr must be 'nominal' or 'effective', not {side_snr!r}")
    out = channel(symbols[:, :n], snr_db, layer_sizes=sizes)
    eff = effective_snr_db(out, torch.as_tensor(snr_db, dtype=torch.float32).expand(out.y.shape[0]))
    if side_snr == "effective" and out.csi != "perfect":
        raise ValueError("side_snr='effective' needs perfect CSI at the receiver")
    rx = Received(layer_estimates(out, sizes), eff if side_snr == "effective" else snr_db)
    partner_rx = None
    if partner_symbols is not None:
        noise = out.y - out.h * symbols[:, :n]
        twin = ChannelOutput(y=out.h * partner_symbols[:, :n] + noise, h=out.h, no=out.no, csi=out.csi)
        partner_rx = layer_estimates(twin, sizes)
    return rx, eff, partner_rx


def _different_class_partner(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """For each row, the index of a row with a different label (random); -1 if there is none."""
    b = labels.shape[0]
    partner = torch.full((b,), -1, dtype=torch.long)
    for _ in range(4):  # a few random rounds fill almost every row
        cand = torch.randperm(b, generator=generator)
        ok = (partner < 0) & (labels[cand] != labels)
        partner[ok] = cand[ok]
        if bool((partner >= 0).all()):
            break
    return partner


def build_receiver(name: str, encoder: Encoder, dataset: ImageDataset, **kwargs: Any) -> Receiver:
    """Build receiver ``name`` sized for ``encoder``'s layers and ``dataset``'s classes and images."""
    concept = COARSE_CONCEPTS.get(dataset.name)
    kwargs.setdefault("coarse_groups", concept.groups if concept is not None else None)
    return RECEIVERS.create(name, layer_symbols=tuple(encoder.layer_symbols), num_classes=dataset.num_classes,
                            image_shape=dataset.shape, **kwargs)


def _dataset(
    dataset: str | ImageDataset, split: str, subset: int | None, root: str | Path | None,
) -> ImageDataset:
    if isinstance(dataset, ImageDataset):
        return dataset.subset(subset) if subset is not None else dataset
    return load_dataset(dataset, split=split, root=root, subset=subset)


class ReceiverTrainConfig(FlatConfig):
    """How a receiver is trained on a frozen JSCC encoder (the options of ``semcom train-receiver``).

    Constructed and stored flat like :class:`~semcom.jscc.config.TrainConfig`: the training channel
    is a :class:`~semcom.channels.spec.ChannelSpec` read from the options ``channel``, ``block``,
    ``csi`` and ``k_factor``.
    """

    flat_names: ClassVar[dict[str, dict[str, str]]] = {"channel": {"type": "channel"}}

    weighting: str = Field(default="equal",
                           description="Task weighting: equal, uncertainty, gradnorm, pcgrad, mgda-ub.")
    channel: ChannelSpec = Field(default_factory=lambda: ChannelSpec.model_validate({}),
                                 description="the training channel (flat: channel, block, csi, k_factor)")
    snr_db: tuple[float, float] = Field(default=(0.0, 20.0), description="Training SNR range in dB, MIN,MAX "
                                        "(drawn uniformly per image); one value: fixed.")
    side_snr: Literal["nominal", "effective"] = Field(default="nominal",
                                                      description="SNR the receiver is told: nominal or effective.")
    epochs: int = Field(default=5, ge=1, description="Epochs.")
    batch_size: int = Field(default=128, ge=1, description="Batch size.")
    lr: float = Field(default=1e-3, description="Adam learning rate.")
    subset: int | None = Field(default=None, ge=1, description="Train on the first N training images only.")
    data_root: str | Path | None = Field(default=None, description="Data root holding the dataset files.")
    seed: int = Field(default=0, description="Seed of initialisation, batch order and channel.")
    receiver_kwargs: dict[str, Any] = Field(default_factory=dict, description="the receiver's own options "
                                                                             "(e.g. width)")
    weighting_kwargs: dict[str, Any] = Field(default_factory=dict, description="the weighting's own options")
    max_steps: int | None = Field(default=None, description="stop after this many steps (smoke tests)")

    @field_validator("snr_db", mode="before")
    @classmethod
    def _snr_range(cls, value: Any) -> Any:
        """``"0,20"``, ``[0, 20]`` or one value (a fixed SNR) -> ``(min, max)``."""
        if isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v]
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, list | tuple) and len(value) == 1:
            value = [value[0], value[0]]
        return value

    @field_validator("snr_db")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] > value[1]:
            raise ValueError(f"expected MIN,MAX with MIN <= MAX (or one value), got {value[0]:g},{value[1]:g}")
        return value


def train_receiver(
    receiver_name: str,
    model_name_or_path: str | Path | Any,
    dataset: str | ImageDataset,
    config: ReceiverTrainConfig | None = None,
    *,
    log: Callable[[dict[str, float]], None] | None = None,
    **options: Any,
) -> TrainedReceiver:
    """Train receiver ``receiver_name`` on the frozen encoder ``model_name_or_path``.

    Args:
        receiver_name: a name in :data:`semcom.receivers.RECEIVERS` (or a plug-in's).
        model_name_or_path: zoo name (``mnist-mr3-awgn``), ``.safetensors`` path or an encoder object.
        dataset: dataset name (its ``train`` split is used) or an :class:`ImageDataset`.
        config: how to train (:class:`ReceiverTrainConfig`); default options when None.
        log: called with each epoch's mean losses.
        options: :class:`ReceiverTrainConfig` fields by their flat names, over ``config``
            (``weighting="pcgrad"``, ``channel="rayleigh"``, ``snr_db=(0, 20)``, ``epochs=2``, ...).
            Adam trains the receiver and the weighting's own parameters; training SNRs are drawn per
            image uniformly from ``snr_db``; ``seed`` seeds the receiver's initialisation, the batch
            order and the channel; ``max_steps`` stops early (smoke tests).

    Under ``torchrun`` (:mod:`semcom.distributed`, backend ``gloo``) every process calls it: each
    draws the whole batch (order, SNRs, partners, channel) as one process would and trains on its
    share of the rows, and the gradients are averaged over the processes after the weighting's
    backward pass. With ``equal`` or ``uncertainty`` the step is then the one-process step up to the
    order of floating-point sums, for receivers that draw no noise of their own (those that do, from
    torch's global generator, draw it per process); ``pcgrad`` and ``mgda-ub`` combine each share's
    task gradients; ``gradnorm``, whose task weights follow each process's own losses, is refused.
    All processes return the same receiver; ``log`` is called on rank 0 only.
    """
    cfg = ReceiverTrainConfig.from_dict({**(config.to_flat() if config else {}), **options})
    with process_group("cpu") as (group, _):
        return _train(receiver_name, model_name_or_path, dataset, cfg, log if group.main else None, group)


def _train(
    receiver_name: str, model_name_or_path: str | Path | Any, dataset: str | ImageDataset, cfg: ReceiverTrainConfig,
    log: Callable[[dict[str, float]], None] | None, group: ProcessGroup = SINGLE,
) -> TrainedReceiver:
    """:func:`train_receiver` with its options checked, in this process's place in ``group``."""
    if group.joined and cfg.weighting == "gradnorm":
        raise ValueError("gradnorm's task weights follow each process's own losses: train it in one process")
    # The channel comes first: building the first channel of a process imports Sionna, whose import
    # reseeds torch's global generator at random; the seed below then holds for the whole run.
    channel = cfg.channel.build(seed=cfg.seed)
    torch.manual_seed(cfg.seed)
    model_sha256 = _model_sha256(model_name_or_path)  # of the file as loaded (it may be replaced later)
    encoder = load_encoder(model_name_or_path)
    ds = _dataset(dataset, "train", cfg.subset, cfg.data_root)
    receiver = build_receiver(receiver_name, encoder, ds, **cfg.receiver_kwargs)
    weights = make_weighting(cfg.weighting, receiver.tasks, **cfg.weighting_kwargs)
    symbols = encode_dataset(encoder, ds)
    params = list(receiver.parameters()) + list(weights.parameters())
    group.same_as_main(params)
    if group.rank > 0:  # noise a receiver draws itself (sampled attention) differs between the shares
        torch.manual_seed(cfg.seed * 1_000_003 + group.rank)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[dict[str, float]] = []
    step = 0
    receiver.train()
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        count = 0
        order = torch.randperm(len(ds), generator=gen)
        for sel in _batches(order, cfg.batch_size):
            batch = _receiver_batch(receiver, symbols, ds, sel, channel, cfg, encoder.layer_symbols, gen)
            if group.joined:  # the whole batch was drawn; this process trains on its rows
                batch = _batch_share(*batch, len(sel), group)
            for k, v in _receiver_step(receiver, weights, opt, *batch, group).items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            step += 1
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
        if group.joined and sums:  # each process's mean losses over its shares -> the whole batches'
            sums = dict(zip(sums, group.mean(torch.tensor(list(sums.values()), dtype=torch.float64)).tolist(),
                            strict=True))
        record = {k: v / max(count, 1) for k, v in sums.items()}
        record.update(epoch=float(epoch + 1), steps=float(step), seconds=time.perf_counter() - t0)
        history.append(record)
        if log is not None:
            log(record)
        if cfg.max_steps is not None and step >= cfg.max_steps:
            break
    receiver.eval()
    return TrainedReceiver(receiver, weights, encoder, _trained_config(receiver_name, model_name_or_path, ds, cfg,
                                                                       step, model_sha256, group), history)


def _batches(order: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Full batches of ``order`` (a set smaller than one batch gives one short batch)."""
    n = len(order)
    for start in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
        yield order[start:start + batch_size]


def _receiver_batch(
    receiver: Receiver, symbols: torch.Tensor, ds: ImageDataset, sel: torch.Tensor, channel: Channel,
    cfg: ReceiverTrainConfig, layer_symbols: Sequence[int], gen: torch.Generator,
) -> tuple[Received, Targets]:
    """What the receiver gets for the images ``sel`` and what it should say about them.

    A receiver that wants pairs gets each image twice: as itself and, in rows ``B..2B-1``, a
    different-class image sent through the same channel realisation (a hard-negative pair).
    """
    sizes = list(layer_symbols)
    x, labels = symbols[sel], ds.labels[sel]
    lo, hi = cfg.snr_db
    snr = lo + (hi - lo) * torch.rand(len(sel), generator=gen)
    partner = None
    if receiver.wants_pairs:
        partner = _different_class_partner(labels, gen)
        twin_sel = sel[partner.clamp_min(0)]
        rx, eff, twin = receive(x, channel, snr, sizes, partner_symbols=symbols[twin_sel], side_snr=cfg.side_snr)
        assert twin is not None
        # rows B..2B-1 are the twins: row i and row B+i form a hard-negative pair
        b = len(sel)
        layers = [torch.cat([a, t], 0) for a, t in zip(rx.layers, twin, strict=True)]
        rx = Received(layers, torch.cat([rx.snr_db, rx.snr_db]))
        eff = torch.cat([eff, eff])
        idx = torch.arange(b)
        pair = torch.cat([torch.where(partner >= 0, idx + b, -1), torch.where(partner >= 0, idx, -1)])
        sel = torch.cat([sel, twin_sel])
        x, labels = symbols[sel], ds.labels[sel]
        partner = pair
    else:
        rx, eff, _ = receive(x, channel, snr, sizes, side_snr=cfg.side_snr)
    groups = receiver.coarse_groups
    targets = Targets(
        labels=labels,
        coarse=None if groups is None else coarse_labels(labels, groups),
        images=ds.images(sel),
        symbols=_split(x, sizes),
        snr_db=eff,
        partner=partner,
    )
    return rx, targets


def _batch_share(rx: Received, targets: Targets, batch: int, group: ProcessGroup) -> tuple[Received, Targets]:
    """This process's rows of a batch of ``batch`` images (:meth:`ProcessGroup.shard`).

    With hard-negative pairs (rows ``batch..2*batch-1`` the twins) a process keeps its rows and their
    twins, and the partner indices are renumbered to point into its share.
    """
    lo, hi = group.shard(batch)
    rows = torch.arange(lo, hi)
    partner = targets.partner
    if partner is not None:
        rows = torch.cat([rows, rows + batch])
        local = torch.full((len(partner),), -1, dtype=torch.long)
        local[rows] = torch.arange(len(rows))
        partner = torch.where(partner >= 0, local[partner.clamp_min(0)], -1)[rows]

    def take(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t[rows]

    shared_rx = Received([layer[rows] for layer in rx.layers], rx.snr_db[rows])
    shared = replace(targets, labels=targets.labels[rows], coarse=take(targets.coarse), images=take(targets.images),
                     symbols=None if targets.symbols is None else [s[rows] for s in targets.symbols],
                     snr_db=take(targets.snr_db), partner=partner)
    return shared_rx, shared


def _receiver_step(receiver: Receiver, weights: Weighting, opt: torch.optim.Optimizer, rx: Received,
                   targets: Targets, group: ProcessGroup = SINGLE) -> dict[str, float]:
    """One optimiser step on the weighted task losses (gradients averaged over ``group``); returns each
    task's loss."""
    outputs = receiver(rx)
    losses = receiver.losses(outputs, targets)
    opt.zero_grad(set_to_none=True)
    weights.backward(losses, shared=receiver.shared_parameters(), last_shared=receiver.last_shared_parameters(),
                     representation=outputs.get("shared"))
    group.average_gradients(p for g in opt.param_groups for p in g["params"])
    opt.step()
    return {k: float(v.detach()) for k, v in losses.items()}


def _trained_config(receiver_name: str, model: str | Path | Any, ds: ImageDataset, cfg: ReceiverTrainConfig,
                    steps: int, model_sha256: str | None, group: ProcessGroup = SINGLE) -> dict[str, Any]:
    """The record a :class:`TrainedReceiver` keeps of its training (what its card says); a run shared by
    ``torchrun`` processes adds ``distributed`` (world size and backend)."""
    return {
        "receiver": receiver_name,
        "model": str(model) if isinstance(model, str | Path) else type(model).__name__,
        "dataset": ds.name, "train_images": len(ds),
        "weighting": cfg.weighting, "channel": cfg.channel.type, "block": cfg.channel.block,
        "csi": cfg.channel.csi, "snr_db": list(cfg.snr_db),
        "epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed,
        "receiver_kwargs": cfg.receiver_kwargs, "steps": steps, "side_snr": cfg.side_snr,
        "model_sha256": model_sha256,
        **({"distributed": group.describe()} if group.joined else {}),
    }


@torch.no_grad()
def evaluate_receiver(
    trained: TrainedReceiver,
    dataset: str | ImageDataset,
    snrs_db: Sequence[float] = (0.0, 10.0, 20.0),
    *,
    channel: str = "awgn",
    block: BlockLength = "image",
    csi: Csi = "perfect",
    k_factor: float = 1.0,
    subset: int | None = None,
    data_root: str | Path | None = None,
    batch_size: int = 500,
    seed: int = 1234,
    bins: int = 15,
    side_snr: str | None = None,
) -> list[dict[str, Any]]:
    """Per SNR and resolution r: accuracy, coarse accuracy, ECE and, where the receiver has them,
    PSNR of its reconstruction and the SNR-estimate error.

    Coarse accuracy of a class head: the coarse group with the largest summed probability.
    Returns one row per (SNR, r): ``{"snr_db", "layer", "accuracy", "coarse_accuracy", "ece",
    "psnr_db", "psnr_std", "snr_mae_db", "images"}`` (keys absent where the receiver has no such output).
    ``side_snr``: as in training unless given.

    The loop is :func:`semcom.evaluation.evaluate_system`: the encoder's symbols are computed once,
    and at every SNR the channel restarts at ``seed``.
    """
    side = side_snr or trained.config.get("side_snr", "nominal")
    ds = _dataset(dataset, "test", subset, data_root)
    receiver = trained.receiver.eval()
    sizes = list(trained.encoder.layer_symbols)
    groups = receiver.coarse_groups
    names = {task.name for task in receiver.tasks}
    reconstructs = any(task.kind == "image" for task in receiver.tasks)

    class FrozenEncoderLink:
        """The encoder's symbols through the channel to the receiver, as a TransmissionSystem: layer r's
        output has the receiver's ``class@r`` scores and ``image@r`` (NaN pixels where it has none), and
        in ``info`` its ``coarse@r`` scores and per-image SNR-estimate error against the effective SNR."""

        name, kind = receiver.name, "jscc"
        num_layers, layer_symbols = len(sizes), sizes

        def prepare(self, images: torch.Tensor, user_snrs_db: Sequence[float]) -> torch.Tensor:
            return trained.encoder.encode(images)

        def receive(self, tx: torch.Tensor, channel: Channel, snr_db: float, resolution: int) -> list[LayerOutput]:
            snr = torch.full((tx.shape[0],), float(snr_db))
            rx, eff, _ = receive(tx, channel, snr, sizes, side_snr=side)
            out = receiver(rx)
            layers = []
            for r in range(1, resolution + 1):
                image = out.get(f"image@{r}")
                info = {}
                if f"coarse@{r}" in out:
                    info["coarse_logits"] = out[f"coarse@{r}"]
                if f"snr@{r}" in out:
                    info["snr_error_db"] = (out[f"snr@{r}"] * SNR_SCALE_DB - eff).abs()
                layers.append(LayerOutput(r, torch.full((tx.shape[0], *ds.shape), math.nan) if image is None
                                          else image.clamp(0, 1), out.get(f"class@{r}"), info=info))
            return layers

    # the symbols of every image, encoded once for all SNRs; every SNR restarts the channel at ``seed``
    symbols = encode_dataset(trained.encoder, ds)
    spec = ChannelSpec(type=channel, block=block, csi=csi, k_factor=k_factor if channel == "rician" else None)
    ch = spec.build(seed=seed)
    result = evaluate_system(FrozenEncoderLink(), ds, ch, snrs_db, batch_size=batch_size,
                             seeds=StreamPerSnr(seed, step=0),
                             tasks={"classification", "reconstruction"} if reconstructs else {"classification"},
                             keep_logits=True, transmissions=torch.split(symbols, batch_size))
    rows = []
    for i, snr_value in enumerate(result.snr_db):
        for r in range(1, len(sizes) + 1):
            collected = result.layers[i][r - 1]
            row: dict[str, Any] = {"snr_db": snr_value, "layer": r, "images": len(ds)}
            logits = collected.logits()
            if logits.numel():
                row["accuracy"] = accuracy(logits, ds.labels)
                row["ece"] = expected_calibration_error(logits, ds.labels, bins)
                if groups is not None:
                    probs = torch.softmax(logits, 1)
                    g = torch.zeros(len(ds), max(groups) + 1).index_add_(1, torch.tensor(groups), probs)
                    row["coarse_accuracy"] = accuracy(g, coarse_labels(ds.labels, groups))
            if f"coarse@{r}" in names and groups is not None:
                row["coarse_accuracy"] = accuracy(collected.info_values("coarse_logits"),
                                                  coarse_labels(ds.labels, groups))
            if f"image@{r}" in names:
                p = collected.psnr_values()
                row["psnr_db"] = float(p.mean())
                row["psnr_std"] = float(p.std())
            if f"snr@{r}" in names:
                row["snr_mae_db"] = float(collected.info_values("snr_error_db").mean())
            if len(row) > 3:
                rows.append(row)
    return rows
