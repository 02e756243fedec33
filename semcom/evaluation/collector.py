"""What a receiver got right: per-image metrics of one layer, collected over batches and draws.

A :class:`LayerCollector` holds the results of one layer r (decoded from layers 1..r) for one user at
one SNR. Each :meth:`LayerCollector.add` takes a batch's :class:`~semcom.systems.LayerOutput` and
keeps, per image: PSNR (and SSIM, MS-SSIM), whether the top class was right, whether the link
failed, and the batch's ``info``; on request also the first few reconstructions of draw 0 (for
pictures, :meth:`LayerCollector.kept_images`). Values keep the order they arrived in (the runner's order: batch,
then user, then draw), so that sums over them, and so the summaries, are the same from run to run.

The summaries follow docs/conventions.md: mean per-image PSNR with its sample spread; pooled PSNR
``10 log10(1 / mean MSE)`` over the whole set (the published deep-JSCC code's convention, lower or
equal); accuracy top-1 over images and draws; 95% half-widths over samples (images x draws), and,
with several draws, the Student-t half-width of the draws' means, which holds the spread between
noise realisations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from semcom.metrics import Summary, ms_ssim, pooled_psnr, psnr, ssim, summarize, t_interval95, top1_hits
from semcom.systems import LayerOutput

__all__ = ["LayerCollector", "LayerSummary", "merge_info"]


@dataclass
class _Batch:
    """What one :meth:`LayerCollector.add` kept (None: not measured for this batch)."""

    draw: int
    size: int
    psnr: torch.Tensor | None
    ssim: torch.Tensor | None
    ms_ssim: torch.Tensor | None
    hits: torch.Tensor | None
    outage: torch.Tensor
    logits: torch.Tensor | None
    info: dict[str, Any]
    kept: torch.Tensor | None = None


@dataclass(frozen=True)
class LayerSummary:
    """The statistics of one layer at one SNR.

    Attributes:
        psnr: per-image PSNR in dB over images x draws (mean, sample std, count, 95% half-width).
        psnr_pooled: ``10 log10(1 / mean MSE)`` over images x draws (NaN without reconstruction).
        psnr_draw_ci95: Student-t 95% half-width of the draws' mean PSNRs (NaN for one draw).
        psnr_pooled_draw_ci95: the same for the draws' pooled PSNRs.
        accuracy: top-1 hits as 0/1 over images x draws (NaN mean without class scores).
        accuracy_draw_ci95: Student-t 95% half-width of the draws' accuracies (NaN for one draw).
        ssim, ms_ssim: per-image structural similarity (NaN when not measured).
        outage: per-image link failures as 0/1.
        draws: the number of draws that were collected.
    """

    psnr: Summary
    psnr_pooled: float
    psnr_draw_ci95: float
    psnr_pooled_draw_ci95: float
    accuracy: Summary
    accuracy_draw_ci95: float
    ssim: Summary
    ms_ssim: Summary
    outage: Summary
    draws: int


@dataclass
class LayerCollector:
    """Per-image metrics of one layer for one user at one SNR, over batches and draws.

    Args:
        reconstruction: measure the images (PSNR; SSIM and MS-SSIM too when ``similarity``).
        classification: count top-1 hits where the output has class scores.
        similarity: also SSIM and MS-SSIM (costly; the scenario runner reports them, training does not).
        keep_logits: keep the class scores too (:meth:`logits`), for metrics over the whole set
            such as calibration.
        keep_images: keep the reconstructions of the first ``keep_images`` images of draw 0
            (:meth:`kept_images`), for pictures; they take no part in the metrics.
    """

    reconstruction: bool = True
    classification: bool = True
    similarity: bool = True
    keep_logits: bool = False
    keep_images: int = 0
    _batches: list[_Batch] = field(default_factory=list, repr=False)

    def add(self, images: torch.Tensor, labels: torch.Tensor, out: LayerOutput, draw: int = 0) -> None:
        """Measure one batch: ``images [B, C, H, W]`` and ``labels [B]`` sent, ``out`` received in draw ``draw``."""
        size = images.shape[0]
        p = s = m = hits = logits = None
        if self.reconstruction:
            rec = out.images.to(images.device)
            p = psnr(images, rec).cpu()
            if self.similarity:
                s, m = ssim(images, rec).cpu(), ms_ssim(images, rec).cpu()
        if self.classification and out.logits is not None:
            hits = top1_hits(out.logits.to(labels.device), labels).float().cpu()
            if self.keep_logits:
                logits = out.logits
        outage = out.outage if out.outage is not None else torch.zeros(size, dtype=torch.bool)
        kept = None
        if self.keep_images and draw == 0:
            room = self.keep_images - sum(len(b.kept) for b in self._batches if b.kept is not None)
            if room > 0:
                kept = out.images[:room].detach().cpu().clone()
        self._batches.append(_Batch(draw, size, p, s, m, hits, outage.float().cpu(), logits, out.info, kept))

    # -- the values, in arrival order ------------------------------------------------------------------

    def _values(self, name: str, draw: int | None = None) -> torch.Tensor:
        parts = [getattr(b, name) for b in self._batches if draw is None or b.draw == draw]
        parts = [v for v in parts if v is not None]
        return torch.cat(parts) if parts else torch.empty(0)

    def psnr_values(self, draw: int | None = None) -> torch.Tensor:
        """Per-image PSNR in dB ``[N]`` (of one draw, or of all), in arrival order; empty if not measured."""
        return self._values("psnr", draw)

    def hits(self, draw: int | None = None) -> torch.Tensor:
        """Per-image top-1 hits as 0/1 floats ``[N]``; empty without class scores."""
        return self._values("hits", draw)

    def outages(self, draw: int | None = None) -> torch.Tensor:
        """Per-image link failures as 0/1 floats ``[N]``."""
        return self._values("outage", draw)

    def logits(self) -> torch.Tensor:
        """The class scores ``[N, K]`` in arrival order (needs ``keep_logits``; empty without them)."""
        return self._values("logits")

    def kept_images(self) -> torch.Tensor:
        """The kept reconstructions ``[n, C, H, W]`` (floats in [0, 1]) of the first ``n <= keep_images``
        images of draw 0, in dataset order; empty when none were kept."""
        return self._values("kept")

    def kept_outages(self) -> torch.Tensor:
        """Whether each kept image was lost, 0/1 floats ``[n]`` (the receiver shows the dataset mean)."""
        parts = [b.outage[:len(b.kept)] for b in self._batches if b.kept is not None]
        return torch.cat(parts) if parts else torch.empty(0)

    def info_values(self, key: str) -> torch.Tensor:
        """The per-image tensors that outputs carried in ``info[key]``, concatenated in arrival order
        (empty when none did)."""
        parts = [b.info[key] for b in self._batches if key in b.info]
        return torch.cat(parts) if parts else torch.empty(0)

    def infos(self) -> list[dict[str, Any]]:
        """Each batch's ``info`` as the system gave it, in arrival order."""
        return [b.info for b in self._batches]

    def draws(self) -> list[int]:
        """The draws collected, in order."""
        return sorted({b.draw for b in self._batches})

    # -- summaries -------------------------------------------------------------------------------------

    def summary(self) -> LayerSummary:
        """Means, spreads and 95% half-widths (see :class:`LayerSummary`)."""
        draws = self.draws()
        values = self.psnr_values()
        by_draw = [self.psnr_values(d) for d in draws] if values.numel() else []
        hit_by_draw = [self.hits(d) for d in draws] if self.hits().numel() else []
        return LayerSummary(
            psnr=summarize(values),
            psnr_pooled=float(pooled_psnr(values)) if values.numel() else math.nan,
            psnr_draw_ci95=t_interval95([float(v.double().mean()) for v in by_draw]),
            psnr_pooled_draw_ci95=t_interval95([float(pooled_psnr(v)) for v in by_draw]),
            accuracy=summarize(self.hits()),
            accuracy_draw_ci95=t_interval95([float(h.double().mean()) for h in hit_by_draw]),
            ssim=summarize(self._values("ssim")),
            ms_ssim=summarize(self._values("ms_ssim")),
            outage=summarize(self.outages()),
            draws=len(draws),
        )

    def row(self) -> dict[str, Any]:
        """The metric columns of a results-table row (:data:`semcom.scenarios.results.COLUMNS`) and ``info``."""
        s = self.summary()
        return {"psnr_mean": s.psnr.mean, "psnr_std": s.psnr.std, "psnr_ci95": s.psnr.ci95,
                "psnr_pooled": s.psnr_pooled,
                "ssim_mean": s.ssim.mean, "ssim_std": s.ssim.std, "ssim_ci95": s.ssim.ci95,
                "ms_ssim_mean": s.ms_ssim.mean, "ms_ssim_std": s.ms_ssim.std, "ms_ssim_ci95": s.ms_ssim.ci95,
                "accuracy": s.accuracy.mean, "accuracy_std": s.accuracy.std, "accuracy_ci95": s.accuracy.ci95,
                "outage_rate": s.outage.mean, "outage_ci95": s.outage.ci95,
                "info": merge_info([(b.size, b.info) for b in self._batches if b.info])}


def _info_value(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return float(value.float().mean()) if value.numel() else math.nan
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, list | tuple):  # e.g. one MCS per layer
        return " ".join("-" if v is None else str(v) for v in value)
    return str(value)


def merge_info(items: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """One ``info`` from ``(batch size, info)`` pairs: numbers (tensors by their mean) averaged with the
    batch sizes as weights; anything else as its distinct values, sorted and comma-separated."""
    numbers: dict[str, list[tuple[int, float]]] = {}
    words: dict[str, set[str]] = {}
    for weight, info in items:
        for key, raw in info.items():
            value = _info_value(raw)
            if isinstance(value, float):
                numbers.setdefault(key, []).append((weight, value))
            else:
                words.setdefault(key, set()).add(value)
    out: dict[str, Any] = {k: sum(w * v for w, v in vs) / sum(w for w, _ in vs) for k, vs in numbers.items()}
    out.update({k: ",".join(sorted(v)) for k, v in words.items()})
    return dict(sorted(out.items()))
