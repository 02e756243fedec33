"""Configurations that hold whole records inside and read and write as one flat record of options.

``semcom train`` and ``semcom train-receiver`` take flat options (``--enc-width``, ``--channel``,
``--k-factor``); a training YAML file uses the same names as keys, and a model card stores the same
flat record (``train_config``). Inside, a configuration holds whole records: the architecture
options, a :class:`~semcom.channels.spec.ChannelSpec`. :class:`FlatConfig` is the bridge between
the two forms, written once: each record named in ``flat_names`` shows its fields at the top level
under their own names, or under the names given there (``ChannelSpec.type`` is the option
``channel``). Either form validates; both may be mixed, the flat keys winning.

A channel in flat form keeps the rule the commands have always had: ``k_factor`` is the Rician K
factor, :data:`RICIAN_K_FACTOR` unless given, and the other channels ignore it (records written
before the channel became a ``ChannelSpec`` carry ``k_factor: 1.0`` whatever the channel).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self, cast

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from semcom.channels.spec import ChannelSpec

__all__ = ["RICIAN_K_FACTOR", "FlatConfig", "describe_errors"]

RICIAN_K_FACTOR = 1.0  # the flat options' K factor of a rician channel given without one


class FlatConfig(BaseModel):
    """A pydantic configuration whose nested records also read and write as flat options.

    Subclasses name their flattened records in ``flat_names``: ``{field: {record field: flat
    name}}`` (an empty mapping keeps the record's own field names).
    """

    model_config = ConfigDict(extra="forbid")

    flat_names: ClassVar[dict[str, dict[str, str]]] = {}

    @classmethod
    def flat_fields(cls) -> dict[str, tuple[str, ...]]:
        """Each flat name and the path of the field it sets (``"channel" -> ("channel", "type")``)."""
        out: dict[str, tuple[str, ...]] = {}
        for name, info in cls.model_fields.items():
            renames = cls.flat_names.get(name)
            if renames is None:
                out[name] = (name,)
                continue
            record = cast(type[BaseModel], info.annotation)
            for sub in record.model_fields:
                out[renames.get(sub, sub)] = (name, sub)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Validate a flat (or nested, or mixed) record; unknown keys are refused."""
        return cls.model_validate(dict(data))

    def to_flat(self) -> dict[str, Any]:
        """The flat record: every option by its flat name (what cards store and YAML files say)."""
        dumped = self.model_dump()
        out: dict[str, Any] = {}
        for flat, path in self.flat_fields().items():
            value = dumped[path[0]]
            out[flat] = value if len(path) == 1 else value[path[1]]
        return out

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_options(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        fields = cls.flat_fields()
        top: dict[str, Any] = {}
        records: dict[str, dict[str, Any]] = {}
        flat: dict[str, dict[str, Any]] = {}
        for key, value in data.items():
            if key in cls.flat_names and isinstance(value, Mapping | BaseModel):  # a whole record
                records[key] = value.model_dump() if isinstance(value, BaseModel) else dict(value)
            elif len(fields.get(key, ())) == 2:
                record, sub = fields[key]
                flat.setdefault(record, {})[sub] = value
            else:
                top[key] = value  # a top-level field, or an unknown key for pydantic to refuse
        for record, values in flat.items():
            merged = {**records.pop(record, {}), **values}
            top[record] = _flat_channel(merged) if cls.model_fields[record].annotation is ChannelSpec else merged
        return {**top, **records}


def _flat_channel(values: dict[str, Any]) -> dict[str, Any]:
    """A channel's flat options as ``ChannelSpec`` fields: the K factor is the rician channel's only."""
    out = dict(values)
    if out.get("type", ChannelSpec.model_fields["type"].default) == "rician":
        if out.get("k_factor") is None:
            out["k_factor"] = RICIAN_K_FACTOR
    else:
        out.pop("k_factor", None)
    return out


def describe_errors(exc: ValidationError, names: Mapping[tuple[str, ...], str] | None = None) -> str:
    """A pydantic error as one line per problem: ``where: what`` (``where`` a flat name when known).

    ``names`` maps a field path to the name a user typed (a flat option); value errors raised by
    validators keep their own message.
    """
    names = names or {}
    lines = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        error = (err.get("ctx") or {}).get("error")
        msg = str(error) if err["type"] == "value_error" and error is not None else err["msg"]
        cut = next((n for n in range(len(loc), 0, -1) if loc[:n] in names), 0)
        where = ".".join([names[loc[:cut]], *loc[cut:]] if cut else loc)
        lines.append(f"{where}: {msg}" if where else msg)
    return "; ".join(lines)
