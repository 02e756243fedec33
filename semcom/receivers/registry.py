"""The receivers semcom knows by name: :data:`RECEIVERS`, with plug-ins' (entry-point group ``semcom.receivers``).

A factory takes ``layer_symbols``, ``num_classes``, ``image_shape``, ``coarse_groups`` and keyword
options and returns a :class:`~semcom.receivers.base.Receiver`; ``semcom list receivers`` reads the
table, and receiver checkpoints name their receiver by it.
"""

from __future__ import annotations

from semcom.receivers.deep_supervision import all_at_top, deep_supervision, top_only
from semcom.receivers.gradsplit import gradsplit, gradsplit_estimated, separate_trunks, shared_trunk
from semcom.receivers.heads import PerLayerHeads
from semcom.receivers.proxy import proxy_softmax, proxy_uncertainty
from semcom.receivers.routing import recurrent_routing, recurrent_separate, recurrent_shared
from semcom.receivers.slimmable import SlimmableReceiver
from semcom.registry import Registry

__all__ = ["RECEIVERS"]

RECEIVERS = Registry("receivers", entry_point_group="semcom.receivers")
RECEIVERS.add("per-layer-heads", PerLayerHeads,
              "plain per-layer heads: one classifier per resolution on layers 1..r (baseline)")
RECEIVERS.add("deep-supervision", deep_supervision,
              "deep supervision, intermediate concepts: coarse on layer 1, class on 2..L (Li et al. 2018)")
RECEIVERS.add("top-only", top_only, "progressive trunk supervised with the class at the top only (control)")
RECEIVERS.add("all-at-top", all_at_top,
              "progressive trunk, coarse concept and class both at the top (control)")
RECEIVERS.add("proxy-uncertainty", proxy_uncertainty, "proxy tasks (reconstruction, SNR, denoising) fused by "
              "uncertainty-aware attention, hard negatives (after Wu et al.)")
RECEIVERS.add("proxy-softmax", proxy_softmax,
              "proxy-task branches fused by plain softmax attention (control)")
RECEIVERS.add("gradsplit", gradsplit, "GradSplit trunk: feature group t learns from task t only; class, image "
              "(and coarse) on all layers (Deng et al. 2023)")
RECEIVERS.add("gradsplit-estimated", gradsplit_estimated,
              "GradSplit with the task relation estimated from gradient agreement in the first steps")
RECEIVERS.add("shared-trunk", shared_trunk, "hard sharing: the GradSplit trunk, every group learning from every "
              "task (baseline)")
RECEIVERS.add("separate-trunks", separate_trunks, "separate networks: one trunk per task, same depth and width "
              "(baseline)")
RECEIVERS.add("recurrent-routing", recurrent_routing, "recurrent modular routing: layers as a sequence, a module "
              "pool wired per task, step and SNR by Gumbel routers (after Xu et al. 2021)")
RECEIVERS.add("recurrent-shared", recurrent_shared, "recurrent receiver, one core and state for both tasks, "
              "parameters matched to recurrent-routing (baseline)")
RECEIVERS.add("recurrent-separate", recurrent_separate,
              "recurrent receiver per task, nothing shared, parameters matched to recurrent-routing (baseline)")
RECEIVERS.add("slimmable", SlimmableReceiver, "controllable multi-task: slimmable trunk and class/image decoders, run "
              "at a FLOPs budget and task preferences chosen at run time (after Aich et al. 2023)")
