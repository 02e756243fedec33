"""The one evaluation loop: a dataset through a transmission system and a channel, into collectors.

Every number semcom reports about a link comes from :func:`evaluate_links`: the scenario runner
(each SNR point of each system), JSCC training (validation and test), semantic-receiver evaluation
and the benchmarks. It does, for each batch b of the dataset, in this order::

    tx = system.prepare(images, [SNR of every link])          # broadcast: once per batch
    for each link u:
        tx = system.prepare(images, [SNR of u])               # unicast: once per link instead
        for each draw d:
            channel restarts its stream if the schedule says so
            outs = system.receive(tx, channel, SNR of u, r_u) # layers 1..r_u
            collector (u, r).add(images, labels, outs[r - 1], d) for r = 1..r_u

with torch's global generator seeded around ``prepare`` and ``receive`` as the
:class:`~semcom.evaluation.seeds.SeedSchedule` says. :func:`evaluate_system` is the common case:
one link, a list of SNRs, one :class:`~semcom.evaluation.collector.LayerCollector` per SNR and layer.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from semcom.channels.base import Channel
from semcom.data import ImageDataset
from semcom.errors import SemcomError
from semcom.evaluation.collector import LayerCollector, LayerSummary
from semcom.evaluation.seeds import NO_SEEDS, SeedSchedule, StreamPerSnr, seeded
from semcom.systems import TransmissionSystem

__all__ = ["TASKS", "Evaluation", "Link", "evaluate_links", "evaluate_system"]

#: What a receiver may be scored on: its images (PSNR, SSIM) and its class scores (top-1 accuracy).
TASKS = frozenset({"reconstruction", "classification"})


@dataclass(frozen=True)
class Link:
    """One receiving end of a transmission.

    Attributes:
        name: the link's (user's) name; seeds and results are keyed by it.
        snr_db: its SNR, Es/N0 per complex symbol in dB.
        resolution: the layers it decodes, 1..resolution (a system with fewer layers gives all it has).
        tasks: what it is scored on, a subset of :data:`TASKS`.
    """

    name: str
    snr_db: float
    resolution: int
    tasks: frozenset[str] = TASKS


@torch.no_grad()
def evaluate_links(
    system: TransmissionSystem,
    data: ImageDataset,
    channel: Channel,
    links: Sequence[Link],
    *,
    point: int = 0,
    draws: int = 1,
    batch_size: int = 500,
    broadcast: bool = True,
    seeds: SeedSchedule = NO_SEEDS,
    device: str | torch.device = "cpu",
    similarity: bool = True,
    keep_logits: bool = False,
    keep_images: int = 0,
    transmissions: Sequence[Any] | None = None,
    label: str | None = None,
    tick: Callable[[], None] | None = None,
) -> dict[str, list[LayerCollector]]:
    """Send ``data`` to every link at SNR point ``point`` (see the module docstring for the order).

    Args:
        system: what encodes and decodes (:class:`~semcom.systems.TransmissionSystem`).
        data: the images and labels, sent in batches of ``batch_size`` in dataset order.
        channel: the channel every link's reception goes through (reseeded as ``seeds`` says).
        links: the receivers, each with its SNR and resolution.
        point: index of this SNR point, handed to ``seeds``.
        draws: Monte Carlo channel draws per image and link.
        broadcast: one ``prepare`` per batch for all links (an SSCC then picks its MCS for the worst
            of them); False: one per link, with that link's SNR only (unicast).
        seeds: where the random streams restart.
        device: where images and labels go before ``prepare``.
        similarity: also measure SSIM and MS-SSIM.
        keep_logits: keep the class scores in the collectors.
        keep_images: keep the reconstructions of the first ``keep_images`` images of draw 0 in the
            collectors (:meth:`~semcom.evaluation.collector.LayerCollector.kept_images`), for pictures.
        transmissions: ``prepare``'s result for each batch, computed in advance (an encoder that
            ignores the SNR, encoded once for all SNR points); None: call ``prepare``.
        label: the system's name in error messages (default ``system.name``).
        tick: called after each reception (a batch, a user, a draw).

    Returns:
        ``{link name: [collector of layer 1, ..., collector of layer r]}``, r = the link's resolution,
        capped at the system's number of layers.

    Raises:
        SemcomError: the system returned other layers than 1..r.
    """
    label = label or system.name
    depth = {link.name: min(link.resolution, system.num_layers) for link in links}
    collect = {link.name: [LayerCollector(reconstruction="reconstruction" in link.tasks,
                                          classification="classification" in link.tasks,
                                          similarity=similarity, keep_logits=keep_logits,
                                          keep_images=keep_images)
                           for _ in range(depth[link.name])] for link in links}
    for b, (images, labels) in enumerate(data.batches(batch_size)):
        images, labels = images.to(device), labels.to(device)
        tx = None if transmissions is None else transmissions[b]
        if broadcast and transmissions is None:
            with seeded(seeds.prepare(point, None, b)):
                tx = system.prepare(images, [link.snr_db for link in links])
        for link in links:
            if not broadcast and transmissions is None:
                with seeded(seeds.prepare(point, link.name, b)):
                    tx = system.prepare(images, [link.snr_db])
            r = depth[link.name]
            for draw in range(draws):
                channel_seed = seeds.channel(point, link.name, draw, b)
                if channel_seed is not None:
                    channel.seed(channel_seed)
                with seeded(seeds.receive(point, link.name, draw, b)):
                    outs = system.receive(tx, channel, link.snr_db, r)
                if [o.layer for o in outs] != list(range(1, r + 1)):
                    raise SemcomError(f"system '{label}' returned layers {[o.layer for o in outs]} for "
                                      f"resolution {r} (expected 1..{r})")
                for out in outs:
                    collect[link.name][out.layer - 1].add(images, labels, out, draw)
                if tick is not None:  # per reception: a run of many draws still shows progress
                    tick()
    return collect


@dataclass
class Evaluation:
    """What :func:`evaluate_system` measured.

    Attributes:
        snr_db: the SNRs, in the order given.
        images: images sent per SNR and draw.
        draws: Monte Carlo draws per image.
        layers: ``layers[i][r - 1]``: the collector of layer r at ``snr_db[i]``.
    """

    snr_db: list[float]
    images: int
    draws: int
    layers: list[list[LayerCollector]]

    @property
    def num_layers(self) -> int:
        return len(self.layers[0]) if self.layers else 0

    def summary(self, snr_index: int, layer: int) -> LayerSummary:
        """The statistics of ``layer`` (1-based) at ``snr_db[snr_index]``."""
        return self.layers[snr_index][layer - 1].summary()

    def rows(self) -> list[dict[str, Any]]:
        """One dict per (SNR, layer), SNR-major: mean, std, 95% half-widths and pooled PSNR, accuracy
        (NaN without class scores) and, with several draws, the Student-t half-widths over draws."""
        out = []
        for i, snr in enumerate(self.snr_db):
            for r in range(1, len(self.layers[i]) + 1):
                s = self.summary(i, r)
                out.append({"snr_db": snr, "layer": r, "images": self.images, "draws": self.draws,
                            "psnr_mean": s.psnr.mean, "psnr_std": s.psnr.std, "psnr_ci95": s.psnr.ci95,
                            "psnr_pooled": s.psnr_pooled, "psnr_draw_ci95": s.psnr_draw_ci95,
                            "psnr_pooled_draw_ci95": s.psnr_pooled_draw_ci95,
                            "accuracy": s.accuracy.mean, "accuracy_ci95": s.accuracy.ci95,
                            "accuracy_draw_ci95": s.accuracy_draw_ci95})
        return out


def evaluate_system(
    system: TransmissionSystem,
    data: ImageDataset,
    channel: Channel,
    snrs_db: Sequence[float],
    *,
    resolution: int | None = None,
    draws: int = 1,
    batch_size: int = 500,
    seed: int = 1234,
    seeds: SeedSchedule | None = None,
    tasks: Collection[str] = TASKS,
    device: str | torch.device = "cpu",
    similarity: bool = False,
    keep_logits: bool = False,
    transmissions: Sequence[Any] | None = None,
) -> Evaluation:
    """Per SNR and layer: PSNR (mean, spread, pooled) and top-1 accuracy of ``system`` on ``data``.

    Each SNR in ``snrs_db`` is SNR point ``i`` of :func:`evaluate_links`, with one link that decodes
    layers 1..``resolution`` (default: all).

    Args:
        system: what encodes and decodes (:class:`~semcom.systems.TransmissionSystem`).
        data: the images and labels, in batches of ``batch_size``, in dataset order.
        channel: the channel (its stream restarted as ``seeds`` says).
        snrs_db: the SNRs, Es/N0 per complex symbol in dB.
        resolution: layers decoded (None: all the system has).
        draws: Monte Carlo channel draws per image; with two or more, the summaries carry Student-t
            half-widths over the draws.
        seed: with ``seeds`` None, :class:`~semcom.evaluation.seeds.StreamPerSnr` ``(seed)``: the
            channel restarts at ``seed + i`` at the i-th SNR and runs on over batches and draws.
        seeds: another schedule of seeds.
        tasks: what is measured, a subset of :data:`TASKS`.
        device: where images go before ``prepare``.
        similarity: also SSIM and MS-SSIM.
        keep_logits: keep the class scores (``Evaluation.layers[i][r - 1].logits()``).
        transmissions: ``prepare``'s result per batch, computed once for every SNR (see
            :func:`evaluate_links`).

    Example:
        >>> from semcom.jscc.system import JsccSystem                             # doctest: +SKIP
        >>> result = evaluate_system(JsccSystem("mnist-mr3-awgn"), load_dataset("mnist-sample"),
        ...                          build_channel("awgn"), [0.0, 10.0], draws=3)  # doctest: +SKIP
        >>> result.summary(1, 3).psnr_pooled                                       # doctest: +SKIP
    """
    schedule = StreamPerSnr(seed) if seeds is None else seeds
    r = system.num_layers if resolution is None else resolution
    wanted = frozenset(tasks)
    if not wanted <= TASKS:
        raise ValueError(f"tasks must be among {sorted(TASKS)}, got {sorted(wanted)}")
    layers = []
    for i, snr in enumerate(snrs_db):
        link = Link("receiver", float(snr), r, wanted)
        collected = evaluate_links(system, data, channel, [link], point=i, draws=draws, batch_size=batch_size,
                                   seeds=schedule, device=device, similarity=similarity,
                                   keep_logits=keep_logits, transmissions=transmissions)
        layers.append(collected[link.name])
    return Evaluation([float(s) for s in snrs_db], len(data), draws, layers)
