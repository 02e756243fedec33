"""A JSCC link whose class decisions come from a trained semantic receiver (scenario type ``receiver``).

:class:`ReceiverSystem` is a :class:`semcom.systems.TransmissionSystem`: it sends through a
:class:`semcom.jscc.system.JsccSystem` (same encoding, same channel, same decoders D_1..D_r for the
images) and replaces each layer's logits with the receiver's ``class@r`` output, computed from the
*same* channel realisation. A resolution where the receiver has no class output (e.g. layer 1 of
``deep-supervision``, which answers the coarse concept there) gets ``logits=None``: the scenario
reports no accuracy for it. Images stay the JSCC decoders' unless the receiver's ``image@r`` is a
main task (the slimmable receiver's): proxy receivers' ``image@r`` is an auxiliary task, not the
link's reconstruction.

A slimmable receiver (:mod:`semcom.receivers.slimmable`) runs at the ``control`` the system is given,
``{"mflops": budget, "prefer": {kind: weight}, "priority": ...}`` (a scenario's ``control``): the configuration
:func:`~semcom.receivers.slimmable.search_configuration` chooses, fixed for the whole run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from semcom.channels.base import Channel, ChannelOutput
from semcom.errors import CheckpointError
from semcom.receivers.base import Received, Receiver
from semcom.receivers.checkpoint import load_receiver
from semcom.receivers.slimmable import SlimmableReceiver
from semcom.receivers.training import effective_snr_db, layer_estimates
from semcom.storage import sha256_file
from semcom.systems import LayerOutput

__all__ = ["ReceiverSystem"]


class _Recorder:
    """A channel that remembers its last output (so that the receiver sees the JSCC's realisation)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.last: ChannelOutput | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> ChannelOutput:
        self.last = self.channel(*args, **kwargs)
        return self.last


class ReceiverSystem:
    """Multi-resolution JSCC with a semantic receiver's class decisions (see the module docstring).

    Args:
        model: the JSCC model, as :class:`~semcom.jscc.system.JsccSystem` takes it (zoo name or
            ``.safetensors`` path).
        receiver: a receiver checkpoint (:func:`~semcom.receivers.save_receiver`) or a
            :class:`~semcom.receivers.Receiver` (then ``card`` may say ``side_snr``).
        name: label in results (default: ``MODEL+RECEIVER-FILE-STEM``).
        device: where everything runs.
        card: the receiver's card when ``receiver`` is a module.
        check_model: refuse a receiver whose card names a JSCC model with other weights (sha256).
        control: run a slimmable receiver at this budget and these task preferences,
            ``{"mflops": float | None, "prefer": {kind: weight}, "priority": "decoders" | "trunk"}``
            (None: its largest configuration).

    Raises:
        CheckpointError: unreadable receiver checkpoint, layer sizes that differ from the model's,
            a receiver trained on other JSCC weights, or a ``control`` the receiver cannot take (not
            slimmable, a budget below its smallest configuration, an unknown task).

    Example:
        >>> system = ReceiverSystem("mnist-mr3-awgn", "rx.safetensors")  # doctest: +SKIP
        >>> outs = system.receive(system.prepare(images), build_channel("awgn"), 5.0, 3)  # doctest: +SKIP
        >>> outs[2].logits.shape                                                    # doctest: +SKIP
        torch.Size([B, 10])
    """

    kind = "jscc"

    def __init__(
        self,
        model: Any,
        receiver: str | Path | Receiver,
        name: str | None = None,
        device: str = "cpu",
        card: dict[str, Any] | None = None,
        check_model: bool = True,
        control: Mapping[str, Any] | None = None,
    ) -> None:
        from semcom.jscc.system import JsccSystem

        self.checksums: dict[str, str] = {}
        if isinstance(receiver, Receiver):
            self.receiver = receiver.to(device).eval()
            self.card = dict(card or {})
            rx_label = self.receiver.name
        else:
            path = Path(receiver)
            self.receiver, self.card = load_receiver(path, map_location=device)
            self.checksums[path.name] = self.card.get("sha256") or sha256_file(path)
            rx_label = path.stem
        self.jscc = JsccSystem(model, device=device)
        for model_file, model_sha in self.jscc.checksums.items():  # none for a model object
            self.checksums[model_file] = model_sha
            trained_on = (self.card.get("model") or {}).get("sha256")
            if check_model and trained_on and trained_on != model_sha:
                raise CheckpointError(
                    f"receiver '{rx_label}' was trained on JSCC weights with sha256 {trained_on[:12]}.., but "
                    f"{model_file} has {model_sha[:12]}..; retrain the receiver "
                    f"on this model (command in its card: {self.card.get('command') or 'none recorded'})")
        if tuple(self.receiver.layer_symbols) != tuple(self.jscc.layer_symbols):
            raise CheckpointError(f"receiver '{rx_label}' reads layers of {tuple(self.receiver.layer_symbols)} "
                                  f"symbols but JSCC model '{self.jscc.name}' sends "
                                  f"{tuple(self.jscc.layer_symbols)}")
        self.side_snr = str(self.card.get("side_snr", "nominal"))
        if self.side_snr not in ("nominal", "effective"):
            raise CheckpointError(f"receiver '{rx_label}': unknown side_snr {self.side_snr!r} in its card")
        self.control = None if control is None else self._apply_control(rx_label, control)
        self.image_layers = {t.layer for t in self.receiver.tasks if t.kind == "image" and t.main}
        self.device = device
        self.name = name or f"{self.jscc.name}+{rx_label}"

    def _apply_control(self, rx_label: str, control: Mapping[str, Any]) -> dict[str, Any]:
        """Activate the slimmable receiver's configuration for ``control``; what :meth:`describe` reports."""
        if not isinstance(self.receiver, SlimmableReceiver):
            raise CheckpointError(f"control: receiver '{rx_label}' ({self.receiver.name}) is not slimmable; a budget "
                                  "and task preferences apply to receivers trained as `slimmable` only")
        try:
            config = self.receiver.apply_control(control.get("mflops"), control.get("prefer"),
                                                 control.get("priority", "decoders"))
        except ValueError as exc:
            raise CheckpointError(f"control: receiver '{rx_label}': {exc}") from None
        return {"mflops": control.get("mflops"), "prefer": dict(control.get("prefer") or {}),
                "priority": control.get("priority", "decoders"),
                **self.receiver.describe(config)}

    @property
    def num_layers(self) -> int:
        return self.jscc.num_layers

    @property
    def layer_symbols(self) -> Sequence[int]:
        """Complex channel uses of each layer, k_1..k_L (the JSCC model's)."""
        return self.jscc.layer_symbols

    def prepare(self, images: torch.Tensor, user_snrs_db: Sequence[float] = ()) -> Any:
        """Encode once with the JSCC encoder (see :meth:`JsccSystem.prepare`)."""
        return self.jscc.prepare(images, user_snrs_db)

    @torch.no_grad()
    def receive(self, tx: Any, channel: Channel, snr_db: float | torch.Tensor, resolution: int) -> list[LayerOutput]:
        """The JSCC's outputs for layers 1..``resolution``, logits from the receiver (``class@r`` or None).

        The receiver gets the LMMSE estimates (perfect CSI) or raw ``y`` of the same channel output the
        JSCC decoders got, and the SNR it was trained with (``side_snr`` of its card: nominal or effective).
        """
        recorder = _Recorder(channel)
        outs = self.jscc.receive(tx, recorder, snr_db, resolution)  # type: ignore[arg-type]
        out = recorder.last
        if out is None:  # pragma: no cover - JsccSystem always sends
            raise RuntimeError("the JSCC system did not use the channel")
        batch = out.y.shape[0]
        nominal = torch.as_tensor(snr_db, dtype=torch.float32, device=out.y.device).expand(batch)
        if self.side_snr == "effective":
            if out.csi != "perfect":
                raise CheckpointError("this receiver was trained with the effective SNR, which needs "
                                      "perfect CSI; the scenario's channel has csi: none")
            told = effective_snr_db(out, nominal)
        else:
            told = nominal
        sizes = list(self.layer_symbols[:resolution])
        outputs = self.receiver(Received(layer_estimates(out, sizes), told))
        for o in outs:
            logits = outputs.get(f"class@{o.layer}")
            o.logits = None if logits is None else logits.to(o.images.device)
            if o.layer in self.image_layers and f"image@{o.layer}" in outputs:
                o.images = outputs[f"image@{o.layer}"].clamp(0, 1).to(o.images.device)
        return outs

    def describe(self) -> dict[str, Any]:
        """The JSCC model's facts plus the receiver's (name, constructor, how it was trained)."""
        out = dict(self.jscc.describe())
        ctor = self.card.get("receiver", {})
        out["receiver"] = {
            "name": ctor.get("name", self.receiver.name),
            "options": ctor.get("options", {}),
            "side_snr": self.side_snr,
            **{k: self.card[k] for k in ("weighting", "channel", "training_snr_db", "epochs", "dataset",
                                         "command", "sha256") if k in self.card},
        }
        if self.control is not None:
            out["receiver"]["control"] = self.control
        return out

    def __repr__(self) -> str:
        return f"ReceiverSystem(name={self.name!r}, receiver={self.receiver.name!r})"
