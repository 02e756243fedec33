"""Build the :class:`~semcom.systems.TransmissionSystem` each scenario entry names.

``type: jscc`` builds :class:`semcom.jscc.system.JsccSystem` from a zoo name or checkpoint;
``type: linear`` builds :class:`semcom.analog.system.LinearAnalogSystem` from a fitted linear code
file or from the linear code an anchored JSCC model carries; ``type: sscc`` builds
:class:`semcom.sscc.system.SsccSystem` (codec + MCS, adaptive or capacity) on the channel uses of a
JSCC system of the same scenario; ``type: plugin`` calls a factory ``factory(context, **options)``
registered in the ``semcom.systems`` entry-point group (:data:`SYSTEMS`), or, only when the user
opted in (``semcom --allow-code``), named as ``package.module:function``; ``type: receiver`` builds
:class:`semcom.receivers.system.ReceiverSystem` (a JSCC
model with a trained semantic receiver's class decisions). Whether a ``model``, ``code`` or
``receiver`` field is a shipped name or a file (taken from the scenario's folder) is decided by
:func:`semcom.storage.resolve_weights`. The JSCC, SSCC, linear and receiver modules are imported
only when a scenario uses them (the SSCC brings Sionna's LDPC, which takes seconds to import).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from semcom import zoo
from semcom.errors import ALLOW_CODE_ENV, CheckpointError, ScenarioError, allowed
from semcom.registry import Registry, UnknownNameError
from semcom.scenarios.schema import (
    JsccSystemSpec,
    LinearSystemSpec,
    PluginSystemSpec,
    ReceiverSystemSpec,
    Scenario,
    SsccSystemSpec,
    SystemSpec,
)
from semcom.sscc.codecs.cache import EncodeCache
from semcom.sscc.rate_pool import RateMatchingPool
from semcom.storage import ResolvedWeights, read_metadata, resolve_weights
from semcom.systems import TransmissionSystem

__all__ = ["SYSTEMS", "SystemContext", "build_system", "build_systems", "describe_system"]

#: Plug-in system factories (entry-point group ``semcom.systems``), usable as ``type: plugin``.
SYSTEMS = Registry("systems", entry_point_group="semcom.systems")


@dataclass(frozen=True)
class SystemContext:
    """What a system factory may need to know about the scenario it serves.

    Attributes:
        dataset: dataset name.
        image_shape: ``(C, H, W)``.
        num_classes: number of classes of the dataset.
        mean_image: ``[C, H, W]`` mean of the evaluated split (what an SSCC receiver shows on outage).
        device: where the system runs.
        base_dir: folder that relative paths in the scenario are taken from.
        layer_symbols: channel uses k_1..k_L an SSCC system gets (from its reference JSCC system).
        encode_cache: the run's memory of codec encodes, shared by its SSCC systems (None: none).
        rate_pool: processes that rate-match the SSCC systems' images (None: this process).
    """

    dataset: str
    image_shape: tuple[int, int, int]
    num_classes: int
    mean_image: torch.Tensor
    device: str = "cpu"
    base_dir: Path = Path(".")
    layer_symbols: tuple[int, ...] | None = None
    encode_cache: EncodeCache | None = None
    rate_pool: RateMatchingPool | None = None


def _jscc_source(model: str, ctx: SystemContext) -> ResolvedWeights | str:
    """The weights a scenario's ``model`` names (paths from the scenario's folder), or a plug-in model's name."""
    try:
        return resolve_weights(model, zoo.SHELF, ctx.base_dir)
    except UnknownNameError:  # neither a zoo name nor a file: the model registry decides (plug-in or unknown)
        return model


def _build_jscc(spec: JsccSystemSpec, ctx: SystemContext) -> TransmissionSystem:
    from semcom.jscc.system import JsccSystem

    return JsccSystem(_jscc_source(spec.model, ctx), name=spec.label, device=ctx.device)


def _build_receiver(spec: ReceiverSystemSpec, ctx: SystemContext) -> TransmissionSystem:
    from semcom.receivers.system import ReceiverSystem

    try:
        from semcom.receivers.checkpoint import SHELF

        receiver = resolve_weights(spec.receiver, SHELF, ctx.base_dir, what="receiver checkpoint")
        return ReceiverSystem(_jscc_source(spec.model, ctx), receiver.path, name=spec.label, device=ctx.device,
                              control=None if spec.control is None else spec.control.model_dump())
    except CheckpointError as exc:
        raise ScenarioError(f"system '{spec.label}': {exc}") from None


def _build_linear(spec: LinearSystemSpec, ctx: SystemContext) -> TransmissionSystem:
    from semcom.analog.code import LinearAnalogCode
    from semcom.analog.store import load_linear_code
    from semcom.analog.system import LinearAnalogSystem

    try:
        source = _jscc_source(spec.code, ctx)
        if isinstance(source, ResolvedWeights) and _is_linear_file(source):
            code, _ = load_linear_code(source.path)
        else:  # an anchored JSCC model (zoo name or checkpoint) carries its linear code
            from semcom.jscc.zoo import open_model

            model, _ = open_model(source, device=ctx.device)
            anchor = getattr(model, "linear", None)
            if not isinstance(anchor, LinearAnalogCode):
                raise ScenarioError(f"system '{spec.label}': {spec.code} is a JSCC model without a linear anchor "
                                    "(arch 'anchored' models have one); give a file from `semcom fit-linear`")
            code = anchor
        changes: dict[str, Any] = {}
        if spec.allocation is not None:
            changes["allocation"] = spec.allocation
        if spec.design_snr_db is not None:
            changes["design_snr_db"] = None if spec.design_snr_db == "receiver" else float(spec.design_snr_db)
        if spec.power is not None:
            changes["power"] = spec.power
        return LinearAnalogSystem(code.with_options(**changes), name=spec.label, device=ctx.device)
    except (CheckpointError, ValueError) as exc:
        raise ScenarioError(f"system '{spec.label}': {exc}") from None


def _is_linear_file(weights: ResolvedWeights) -> bool:
    from semcom.analog.store import FORMAT

    return weights.source == "file" and read_metadata(weights.path).get("format") == FORMAT


def _build_sscc(spec: SsccSystemSpec, ctx: SystemContext) -> TransmissionSystem:
    from semcom.sscc.system import SsccSystem

    try:
        return SsccSystem(spec.codec, spec.mcs, ctx.layer_symbols or (), ctx.mean_image, layering=spec.layering,
                           mode=spec.mode, headers=spec.headers, target_bler=spec.target_bler,
                           decoder=spec.decoder, name=spec.label, device=ctx.device, encode_cache=ctx.encode_cache,
                           rate_pool=ctx.rate_pool)
    except ValueError as exc:
        raise ScenarioError(f"system '{spec.label}': {exc}") from None


def plugin_factory(name: str) -> Callable[..., Any]:
    """The factory a ``type: plugin`` entry names: an installed entry point, or (opt-in) a module path.

    ``package.module:function`` imports that module, which runs its code: a scenario file must not be
    able to do that unless the user said so (``semcom --allow-code``, docs/security.md).
    """
    if ":" not in name:
        return SYSTEMS.get(name)
    if not allowed(ALLOW_CODE_ENV):
        raise ScenarioError(f"system factory '{name}' is a module path: loading it would run that module's "
                            "code. Install the plug-in (entry-point group semcom.systems) and name it, or, "
                            "for a scenario file you trust, run semcom --allow-code ...")
    module, _, attr = name.partition(":")
    try:
        obj: Any = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise ScenarioError(f"system factory '{name}': cannot import {module} ({exc})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ScenarioError(f"system factory '{name}': {module} has no attribute '{attr}'")
        obj = getattr(obj, part)
    return obj


def build_system(spec: SystemSpec, context: SystemContext) -> TransmissionSystem:
    """Build the system one scenario entry names (SSCC: ``context.layer_symbols`` must be set)."""
    if isinstance(spec, ReceiverSystemSpec):  # before JsccSystemSpec, its base class
        system = _build_receiver(spec, context)
    elif isinstance(spec, JsccSystemSpec):
        system = _build_jscc(spec, context)
    elif isinstance(spec, LinearSystemSpec):
        system = _build_linear(spec, context)
    elif isinstance(spec, SsccSystemSpec):
        if context.layer_symbols is None:
            raise ScenarioError(f"SSCC system '{spec.label}' needs its channel uses (layer_symbols)")
        system = _build_sscc(spec, context)
    elif isinstance(spec, PluginSystemSpec):
        factory = plugin_factory(spec.factory)
        if not callable(factory):
            raise ScenarioError(f"system factory '{spec.factory}' is a {type(factory).__name__}, "
                                "not a function")
        try:
            system = factory(context, **spec.options)
        except TypeError as exc:  # most often options the factory does not take
            raise ScenarioError(f"system '{spec.label}': {spec.factory}(context, **options) failed: "
                                f"{exc}") from None
    else:  # pragma: no cover - the schema admits nothing else
        raise ScenarioError(f"unknown system type {type(spec).__name__}")
    if not isinstance(system, TransmissionSystem):
        raise ScenarioError(f"system '{spec.label}': the factory returned a {type(system).__name__}, not a "
                            "TransmissionSystem (name, kind, num_layers, layer_symbols, prepare, receive)")
    return system


def build_systems(scenario: Scenario, context: SystemContext) -> dict[str, TransmissionSystem]:
    """All systems of ``scenario`` by label, in file order; checks some system has each user's resolution.

    A system with fewer layers than a user asks for serves that user with all its layers (an SSCC
    system given all the channel uses in one layer, say).

    JSCC and plug-in systems are built first, so that an SSCC system can take the channel uses of
    the JSCC system it is compared with.
    """
    built: dict[str, TransmissionSystem] = {}
    for spec in sorted(scenario.systems, key=lambda s: isinstance(s, SsccSystemSpec)):
        ctx = context
        if isinstance(spec, SsccSystemSpec):
            ref = scenario.symbols_reference(spec)
            symbols = tuple(int(k) for k in ((spec.layer_symbols or ()) if ref is None else built[ref].layer_symbols))
            if spec.one_layer:
                symbols = (sum(symbols),)
            ctx = replace(context, layer_symbols=symbols)
        built[spec.label] = build_system(spec, ctx)
    most = max(system.num_layers for system in built.values())
    for u, user in enumerate(scenario.users):
        if user.resolution > most:
            raise ScenarioError(f"{scenario.where(('users', u, 'resolution'))}: users[{u}].resolution: "
                                f"user '{user.name}' asks for {user.resolution} layers but the most any system "
                                f"here has is {most}")
    return {s.label: built[s.label] for s in scenario.systems}


def describe_system(spec: SystemSpec, system: TransmissionSystem, base_dir: Path) -> dict[str, Any]:
    """What the results say about a system: its spec, kind, layers and checkpoint checksums.

    ``details`` is what the system's own ``describe()`` says (e.g. an SSCC system's header
    accounting), when it has that method. Checksums are the system's own ``checksums`` attribute
    (``{file: sha256}``; a JSCC system's are those of the checkpoint or zoo weights file it loaded).
    """
    checksums = getattr(system, "checksums", None)
    describe = getattr(system, "describe", None)
    return {
        "name": spec.label,
        "kind": str(system.kind),
        "spec": spec.model_dump(mode="json"),
        "details": describe() if callable(describe) else None,
        "num_layers": int(system.num_layers),
        "layer_symbols": [int(k) for k in system.layer_symbols],
        "checksums": dict(checksums) if checksums else None,
    }
