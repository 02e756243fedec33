"""The scenario schema: what a scenario file may say, validated once at the door (pydantic).

A scenario names every box of the data path: the dataset, the systems to compare, the
channel, the users and how many Monte Carlo draws to make. Field-level rules (types, ranges,
allowed words) live in the models below; rules that relate fields to each other (unique names,
aligned SNR sweeps, the SSCC budget's reference) are in :meth:`Scenario.problems`, which returns
each problem with the path of the field it concerns so that :mod:`semcom.scenarios.loader` can
point at the YAML line.

SNR sweeps: each user's ``snr_db`` is one value, a list, or a range ``{start, stop, step}`` (stop
included when it lies on the grid). The scenario has P SNR points, P the longest list; a user with
one value keeps it at every point, and every user that sweeps must have exactly P values. Point p
sends one encoding to all users, each at its own p-th SNR.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationInfo,
    model_serializer,
    model_validator,
)

from semcom.channels.spec import ChannelSpec
from semcom.storage import names_a_file

__all__ = [
    "ChannelSpec",
    "DatasetSpec",
    "JsccSystemSpec",
    "LinearSystemSpec",
    "PluginSystemSpec",
    "Problem",
    "QuickSpec",
    "ReceiverControlSpec",
    "ReceiverSystemSpec",
    "Scenario",
    "SnrRange",
    "SsccSystemSpec",
    "SystemSpec",
    "Task",
    "UserSpec",
    "scenario_json_schema",
]

#: A path into the scenario document (keys and list positions), e.g. ``("users", 0, "snr_db")``.
FieldPath = tuple[str | int, ...]
#: One cross-field problem: where it is and what is wrong.
Problem = tuple[FieldPath, str]

Task = Literal["reconstruction", "classification"]
Mode = Literal["broadcast", "unicast"]

MAX_SNR_POINTS = 1000
#: SNRs a scenario may ask for, in dB: finite, and within what a link budget can mean (Es/N0 of
#: -50 dB is 1e-5, 100 dB is 1e10); anything outside is a typo, not an experiment.
SNR_MIN_DB, SNR_MAX_DB = -50.0, 100.0
SnrDb = Annotated[float, Field(ge=SNR_MIN_DB, le=SNR_MAX_DB, allow_inf_nan=False)]


#: More draws than this is a typo: a million noise draws of every image is already far past
#: the point where the Monte Carlo interval stops shrinking visibly.
MAX_DRAWS = 1_000_000


class _Spec(BaseModel):
    """Base of every part of a scenario: unknown fields are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSpec(_Spec):
    """Which images to send."""

    name: str = Field(description="dataset name from `semcom list datasets`, e.g. mnist, cifar10, "
                                  "mnist-sample")
    split: Literal["train", "test"] = Field("test", description="split: train or test")
    images: int | None = Field(None, ge=1, description="number of images (the first N of the split); "
                                                        "omit for the whole split")
    root: str | None = Field(None, description="data root; relative paths are taken from the scenario "
                                               "file's folder (default: --data-root, $SEMCOM_DATA, cache)")


class SnrRange(_Spec):
    """An SNR sweep ``start, start + step, ...`` up to ``stop`` (included when on the grid), in dB."""

    start: SnrDb = Field(description="first SNR in dB")
    stop: SnrDb = Field(description="last SNR in dB (included when it lies on the grid)")
    step: float = Field(gt=0, allow_inf_nan=False, description="spacing in dB, > 0")

    @model_validator(mode="after")
    def _ordered(self) -> SnrRange:
        if self.stop < self.start:
            raise ValueError(f"stop ({self.stop}) must not be below start ({self.start})")
        if self.count() > MAX_SNR_POINTS:
            raise ValueError(f"{self.count()} SNR points; at most {MAX_SNR_POINTS}")
        return self

    def count(self) -> int:
        """Number of points on the grid."""
        return math.floor((self.stop - self.start) / self.step + 1e-9) + 1

    def values(self) -> list[float]:
        """The grid, rounded to 1e-9 dB so that 0.1 steps print as 0.3, not 0.30000000000000004."""
        return [round(self.start + i * self.step, 9) for i in range(self.count())]


def _snr_kind(value: Any) -> str:
    if isinstance(value, dict | SnrRange):
        return "range"
    if isinstance(value, list | tuple):
        return "list"
    return "value"


SnrSpec = Annotated[
    Annotated[SnrDb, Tag("value")]
    | Annotated[list[SnrDb], Field(min_length=1, max_length=MAX_SNR_POINTS), Tag("list")]
    | Annotated[SnrRange, Tag("range")],
    Discriminator(_snr_kind),
]


class UserSpec(_Spec):
    """One receiver of the broadcast: its SNR (or sweep), resolution and tasks."""

    name: str = Field(min_length=1, description="unique user name, e.g. near, far")
    snr_db: SnrSpec = Field(description="SNR Es/N0 in dB: a number, a list of numbers, or "
                                        "{start, stop, step}; finite, from -50 to 100 dB")
    resolution: int = Field(ge=1, description="number of layers the user decodes (1..L); results are given "
                                              "for every layer 1..resolution (a system with fewer layers "
                                              "gives the user all it has)")
    tasks: list[Task] = Field(["reconstruction"], min_length=1,
                              description="what the user's receiver does: reconstruction, classification")

    def snr_values(self) -> list[float]:
        """The user's SNRs in dB, one per point it defines (one value: fixed over the sweep)."""
        if isinstance(self.snr_db, SnrRange):
            return self.snr_db.values()
        if isinstance(self.snr_db, list):
            return [float(v) for v in self.snr_db]
        return [float(self.snr_db)]


class _SystemBase(_Spec):
    name: str | None = Field(None, min_length=1, description="unique label in the results (default: "
                                                             "derived from the model or codec)")
    mode: Mode = Field("broadcast", description="broadcast: one encoding for all users (an SSCC picks its "
                                                "MCS for the worst user); unicast: one encoding per user")

    @property
    def label(self) -> str:
        """The system's name in results (``name``, or one derived from the other fields)."""
        return self.name or self._default_name()

    def _default_name(self) -> str:
        raise NotImplementedError


class JsccSystemSpec(_SystemBase):
    """A deep JSCC system: a zoo model or a checkpoint file."""

    type: Literal["jscc"] = Field(description="jscc")
    model: str = Field(description="zoo model name (`semcom models`) or a .safetensors checkpoint path, "
                                   "relative to the scenario file's folder")

    def is_path(self) -> bool:
        """Whether ``model`` names a checkpoint file rather than a zoo model (:func:`semcom.storage.names_a_file`)."""
        return names_a_file(self.model)

    def _default_name(self) -> str:
        return Path(self.model).stem if self.is_path() else self.model


class ReceiverControlSpec(_Spec):
    """Run-time control of a slimmable receiver: a compute budget and task preferences (docs/receivers.md).

    The receiver runs the configuration its search chooses for them (no retraining): more decoder
    width to the preferred task, then the widest trunk that fits the budget (or, with ``priority:
    trunk``, the widest trunk first).
    """

    mflops: float | None = Field(None, gt=0, allow_inf_nan=False,
                                 description="compute budget of the receiver in MFLOPs per image (a "
                                             "multiply-add counts 2); default: no limit")
    prefer: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=dict, description="weight of each task by kind, e.g. {class: 2, image: 1}; tasks not "
                                          "named weigh 1")
    priority: Literal["decoders", "trunk"] = Field("decoders", description="what stays wide when the budget is "
                                                                           "tight: decoders (the preferred "
                                                                           "task's first; the paper's rule) "
                                                                           "or trunk")

    @model_validator(mode="after")
    def _some_preference(self) -> ReceiverControlSpec:
        if self.prefer and not any(w > 0 for w in self.prefer.values()):
            raise ValueError("prefer: at least one task weight must be positive")
        return self


class ReceiverSystemSpec(JsccSystemSpec):
    """A deep JSCC system whose class decisions come from a trained semantic receiver (docs/receivers.md).

    The JSCC model encodes, and its decoders give the images; the receiver checkpoint (made by
    ``semcom train-receiver``) reads the same received layers and gives the logits (a slimmable
    receiver also the images, run at its ``control``). For SSCC ``symbols_from`` it counts as a JSCC
    system (same channel uses).
    """

    type: Literal["receiver"] = Field(description="receiver")  # type: ignore[assignment]
    receiver: str = Field(description="receiver checkpoint (.safetensors with its .json card) made by "
                                      "`semcom train-receiver`, relative to the scenario file's folder; or "
                                      "the name of a receiver checkpoint shipped with semcom "
                                      "(semcom/receivers/weights/NAME.safetensors)")
    control: ReceiverControlSpec | None = Field(None, description="a slimmable receiver's compute budget and task "
                                                                  "preferences; refused for other receivers")

    @model_serializer(mode="wrap")
    def _without_absent_control(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Dumps leave out an absent ``control``: specs without one dump (and fingerprint) as before it existed."""
        data: dict[str, Any] = handler(self)
        if data.get("control", 0) is None:
            data.pop("control")
        return data

    def receiver_is_path(self) -> bool:
        """Whether ``receiver`` names a file rather than a receiver shipped with semcom (by its spelling)."""
        return names_a_file(self.receiver)

    def _default_name(self) -> str:
        return f"{super()._default_name()}+{Path(self.receiver).stem}"


class SsccSystemSpec(_SystemBase):
    """A separate source-channel coding system: an image codec over LDPC + QAM (or the ideal bound)."""

    type: Literal["sscc"] = Field(description="sscc")
    codec: str = Field(description="image codec from `semcom list codecs`, e.g. jpeg, webp, hevc-intra")
    mcs: str = Field(description="modulation and coding from `semcom list mcs` (e.g. 4QAM-1/2), adaptive "
                                 "(best MCS for the SNR) or capacity (error-free k log2(1+SNR) bits)")
    headers: Literal["payload", "full"] = Field("payload", description="header accounting: payload (constant "
                                                                       "headers both ends know are not sent) "
                                                                       "or full (whole files)")
    layering: Literal["refinement", "simulcast"] = Field("refinement", description=(
        "how the layers are filled: refinement (layer i > 1 codes the residual of layers 1..i-1) or "
        "simulcast (each layer a complete encoding at its own budget)"))
    target_bler: float = Field(0.1, gt=0, lt=1, description="BLER target of adaptive MCS selection")
    decoder: Literal["sionna", "fast"] = Field("sionna", description=(
        "LDPC decoder: sionna (the reference) or fast (the same belief propagation, vectorised, with "
        "early stopping; verified against sionna, many times faster; see docs/benchmarks.md)"))
    symbols_from: str | None = Field(None, description="name of the JSCC system whose channel uses "
                                                       "(k_1..k_L) this system gets; default: the only JSCC "
                                                       "system")
    layer_symbols: list[Annotated[int, Field(ge=1)]] | None = Field(None, min_length=1,
                                                                    description="channel uses per layer, "
                                                                                "instead of symbols_from")
    one_layer: bool = Field(False, description="send all the channel uses of symbols_from in one layer (the "
                                               "best an SSCC can do with them; every user gets that layer)")

    def _default_name(self) -> str:
        return f"{self.codec}+{self.mcs}"


class LinearSystemSpec(_SystemBase):
    """The linear analog code (SoftCast / KLT, LMMSE receiver): the graceful-degradation baseline."""

    type: Literal["linear"] = Field(description="linear")
    code: str = Field(description="an anchored zoo JSCC model (`semcom models`), whose linear code it takes, "
                                  "or a .safetensors file from `semcom fit-linear` or an anchored JSCC "
                                  "training run, relative to the scenario file's folder")
    allocation: Literal["mmse", "softcast"] | None = Field(None, description="power allocation: mmse "
                                                                             "(MSE-optimal at the design SNR) "
                                                                             "or softcast (lambda^-1/4); "
                                                                             "default: the code's own")
    design_snr_db: Annotated[float, Field(ge=-30, le=60)] | Literal["receiver"] | None = Field(
        None,
        description="SNR in dB the mmse allocation is designed for, or 'receiver' (each user's own SNR, one "
                    "encoding per user); default: the code's own")
    power: Literal["average", "per-image"] | None = Field(None, description="power normalisation: average over "
                                                                            "images, or per image with a pilot "
                                                                            "symbol per layer; default: the "
                                                                            "code's own")

    def is_path(self) -> bool:
        """Whether ``code`` names a file rather than a zoo model (by its spelling)."""
        return names_a_file(self.code)

    def _default_name(self) -> str:
        return f"linear({Path(self.code).stem})"


class PluginSystemSpec(_SystemBase):
    """A system from a Python factory (a plug-in): ``factory(context, **options) -> TransmissionSystem``."""

    type: Literal["plugin"] = Field(description="plugin")
    factory: str = Field(pattern=r"^([\w.-]+|[\w.]+:[\w.]+)$",
                         description="an installed plug-in: its entry-point name in the semcom.systems group; "
                                     "or 'package.module:function', which runs that module's code and so "
                                     "needs semcom --allow-code")
    options: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for the factory")

    def _default_name(self) -> str:
        return self.factory.rpartition(":")[2]


SystemSpec = Annotated[JsccSystemSpec | SsccSystemSpec | LinearSystemSpec | PluginSystemSpec | ReceiverSystemSpec,
                       Field(discriminator="type")]


class QuickSpec(_Spec):
    """How ``--quick`` shrinks the run (a smoke test)."""

    images: int = Field(16, ge=1, description="at most this many images")
    snr_points: int = Field(3, ge=1, description="at most this many SNR points (first, last, evenly between; "
                                                            "one: the middle)")
    draws: int = Field(1, ge=1, description="at most this many channel draws per image")


class Scenario(_Spec):
    """A scenario file (see docs/scenarios.md).

    Cross-field rules are checked after the fields (:meth:`problems`); validating with the context
    ``{"defer_checks": True}`` leaves them to the caller (the YAML loader, which reports lines).
    """

    name: str = Field(min_length=1, description="scenario name (results and plots carry it)")
    description: str = Field("", description="one line for `semcom list scenarios`")
    seed: int = Field(0, ge=0, lt=2**63, description="seed of every channel draw (derived per system, user, SNR point, "
                                           "draw and batch)")
    draws: int = Field(1, ge=1, le=MAX_DRAWS, description="Monte Carlo channel draws per image and SNR point "
                                                          f"(at most {MAX_DRAWS:,})")
    batch_size: int = Field(100, ge=1, description="images encoded at once (part of the seeds)")
    dataset: DatasetSpec
    systems: list[SystemSpec] = Field(min_length=1, description="systems to compare")
    channel: ChannelSpec = Field(default_factory=ChannelSpec)
    users: list[UserSpec] = Field(min_length=1, description="receivers of the broadcast")
    quick: QuickSpec = Field(default_factory=QuickSpec, description="how --quick shrinks the run")

    _source: Path | None = PrivateAttr(None)
    _text: str | None = PrivateAttr(None)
    _lines: dict[FieldPath, int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Scenario:
        if info.context and info.context.get("defer_checks"):
            return self
        problems = self.problems()
        if problems:
            path, msg = problems[0]
            raise ValueError(f"{format_path(path)}: {msg}")
        return self

    # -- cross-field rules ------------------------------------------------------------------------

    def problems(self) -> list[Problem]:
        """Cross-field problems, each with the path of the field it concerns (empty: valid)."""
        out: list[Problem] = []
        out += _duplicates([s.label for s in self.systems], "systems", "name", "system")
        out += _duplicates([u.name for u in self.users], "users", "name", "user")
        lengths = [len(u.snr_values()) for u in self.users]
        first = next((i for i, n in enumerate(lengths) if n > 1), 0)
        for i, (user, n) in enumerate(zip(self.users, lengths, strict=True)):
            if n not in (1, lengths[first]):
                out.append((("users", i, "snr_db"),
                            f"user '{user.name}' sweeps {n} SNR points but '{self.users[first].name}' "
                            f"sweeps {lengths[first]}; users that sweep must have the same number of points "
                            f"(a single value stays fixed)"))
        ch = self.channel
        if ch.type == "rician" and ch.k_factor is None:
            out.append((("channel", "type"), "a rician channel needs k_factor (linear LOS/scattered power)"))
        if ch.type != "rician" and ch.k_factor is not None:
            out.append((("channel", "k_factor"),
                        f"k_factor only applies to the rician channel, not '{ch.type}'"))
        jscc = [s.label for s in self.systems if isinstance(s, JsccSystemSpec)]
        for i, s in enumerate(self.systems):  # receiver files, once the scenario knows its folder
            if isinstance(s, ReceiverSystemSpec) and s.receiver_is_path() and self._source is not None:
                path = self.base_dir() / s.receiver
                if not path.is_file():
                    out.append((("systems", i, "receiver"), f"receiver checkpoint not found: {path}"))
        for i, s in enumerate(self.systems):
            if not isinstance(s, SsccSystemSpec):
                continue
            if s.symbols_from is not None and s.layer_symbols is not None:
                out.append((("systems", i, "layer_symbols"),
                            "give either symbols_from or layer_symbols, not both"))
            elif s.symbols_from is not None and s.symbols_from not in jscc:
                out.append((("systems", i, "symbols_from"),
                            f"'{s.symbols_from}' is not a JSCC system of this scenario; JSCC systems: "
                            f"{', '.join(jscc) or '(none)'}"))
            elif s.symbols_from is None and s.layer_symbols is None and len(jscc) != 1:
                out.append((("systems", i),
                            f"SSCC system '{s.label}' needs its channel uses: symbols_from (one of: "
                            f"{', '.join(jscc) or 'no JSCC system here'}) or layer_symbols"))
        return out

    # -- the sweep --------------------------------------------------------------------------------

    @property
    def num_points(self) -> int:
        """Number of SNR points P (the longest user list)."""
        return max(len(u.snr_values()) for u in self.users)

    def snr_table(self) -> dict[str, list[float]]:
        """``{user: [SNR at point 0..P-1]}``: a user with one value has it at every point."""
        p = self.num_points
        out = {}
        for u in self.users:
            values = u.snr_values()
            out[u.name] = values * p if len(values) == 1 else values
        return out

    def sweeping_users(self) -> list[str]:
        """Users whose SNR changes over the sweep (empty for a single point or all-fixed users)."""
        return [u.name for u in self.users if len(u.snr_values()) > 1]

    def symbols_reference(self, spec: SsccSystemSpec) -> str | None:
        """The JSCC system whose channel uses ``spec`` gets (None when it lists layer_symbols)."""
        if spec.layer_symbols is not None:
            return None
        if spec.symbols_from is not None:
            return spec.symbols_from
        return next(s.label for s in self.systems if isinstance(s, JsccSystemSpec))

    # -- where it came from -----------------------------------------------------------------------

    @property
    def source(self) -> Path | None:
        """The file this scenario was read from (None when built in code)."""
        return self._source

    @property
    def text(self) -> str:
        """The scenario text: the file as read, or a YAML dump of a scenario built in code."""
        if self._text is not None:
            return self._text
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json", exclude_defaults=True), sort_keys=False)

    def base_dir(self) -> Path:
        """Folder relative paths in the scenario are taken from (the file's folder, else the cwd)."""
        return self._source.parent if self._source is not None else Path.cwd()

    def where(self, path: FieldPath) -> str:
        """``file:line`` of a field (as precise as the loader knew it), for messages."""
        if self._source is None:
            return "scenario"
        line = self._lines.get(tuple(path))
        while line is None and path:
            path = path[:-1]
            line = self._lines.get(tuple(path))
        return f"{self._source}:{line or 1}"

    def attach_source(self, source: Path | None, text: str | None, lines: dict[FieldPath, int]) -> Scenario:
        """Record where the scenario came from (used by the loader)."""
        self._source, self._text, self._lines = source, text, dict(lines)
        return self


def format_path(path: FieldPath) -> str:
    """``("users", 0, "snr_db")`` -> ``users[0].snr_db``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _duplicates(names: list[str], section: str, key: str, what: str) -> Iterator[Problem]:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            yield (section, i, key), f"{what} name '{name}' is used twice; names must be unique"
        seen.add(name)


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file, generated from :class:`Scenario`."""
    schema = Scenario.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "scenario.schema.json",
            **schema}
