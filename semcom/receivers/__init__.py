"""Semantic receivers: task heads and multi-task methods on the received JSCC layers.

A receiver maps the received layers 1..r (:class:`Received`) to a dict of task outputs and declares
its :class:`Task` list and losses (:mod:`semcom.receivers.base`). Receivers are registered by name
in :data:`RECEIVERS` (:mod:`semcom.receivers.registry`); third-party packages add theirs through the
``semcom.receivers`` entry-point group (a factory taking ``layer_symbols``, ``num_classes``,
``image_shape``, ``coarse_groups`` and keyword options, returning a :class:`Receiver`). Task-weighting strategies are in
:data:`WEIGHTINGS` (entry-point group ``semcom.weightings``) and work with every receiver.

>>> from semcom.receivers import RECEIVERS, WEIGHTINGS
>>> "per-layer-heads" in RECEIVERS and "pcgrad" in WEIGHTINGS
True
"""

from semcom.receivers.base import SHARED, Received, Receiver, Targets, Task, coarse_labels, layer_features
from semcom.receivers.calibration import expected_calibration_error
from semcom.receivers.checkpoint import TrainedReceiver, load_receiver, save_receiver
from semcom.receivers.concepts import COARSE_CONCEPTS, CoarseConcept, coarse_concept
from semcom.receivers.deep_supervision import DeepSupervision
from semcom.receivers.heads import PerLayerHeads
from semcom.receivers.proxy import BRANCHES, ProxyTaskReceiver
from semcom.receivers.registry import RECEIVERS
from semcom.receivers.system import ReceiverSystem
from semcom.receivers.training import (
    build_receiver,
    encode_dataset,
    evaluate_receiver,
    load_encoder,
    receive,
    train_receiver,
)
from semcom.receivers.weighting import (
    WEIGHTINGS,
    EqualWeighting,
    GradNorm,
    MgdaUb,
    PcGrad,
    UncertaintyWeighting,
    Weighting,
    make_weighting,
    min_norm_weights,
    pcgrad_project,
)

__all__ = [
    "BRANCHES",
    "COARSE_CONCEPTS",
    "RECEIVERS",
    "SHARED",
    "WEIGHTINGS",
    "CoarseConcept",
    "DeepSupervision",
    "EqualWeighting",
    "GradNorm",
    "MgdaUb",
    "PcGrad",
    "PerLayerHeads",
    "ProxyTaskReceiver",
    "Received",
    "Receiver",
    "ReceiverSystem",
    "Targets",
    "Task",
    "TrainedReceiver",
    "UncertaintyWeighting",
    "Weighting",
    "build_receiver",
    "coarse_concept",
    "coarse_labels",
    "encode_dataset",
    "evaluate_receiver",
    "expected_calibration_error",
    "layer_features",
    "load_encoder",
    "load_receiver",
    "make_weighting",
    "min_norm_weights",
    "pcgrad_project",
    "receive",
    "save_receiver",
    "train_receiver",
]
