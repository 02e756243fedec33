"""Command-line options to configuration records: what was typed, comma lists, one-line errors.

The commands keep their typer signatures (the option names, types and defaults users type; the
help text is each field's description in the configuration model, checked by the tests); these
helpers turn the parsed options into a :class:`~semcom.flat_config.FlatConfig`. Imported inside the
commands: they load pydantic and the configuration models, which ``semcom --help`` does not need.
"""

from __future__ import annotations

import shlex
import sys
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import typer
from pydantic import ValidationError

from semcom.errors import SemcomError
from semcom.flat_config import FlatConfig, describe_errors

__all__ = ["build_config", "comma_list", "typed_options"]

C = TypeVar("C", bound=FlatConfig)


def command_line(ctx: typer.Context, name: str, arguments: Iterable[str] = ()) -> str:
    """``semcom NAME ...`` as typed, else rebuilt from the parsed parameters (for cards and results).

    Rebuilt: the values of the positional ``arguments`` (parameter names), then every other parameter
    that has a value, ``--x value``; a boolean as its flag (``--half``/``--float`` for ``half``, else
    ``--x``/``--no-x``).
    """
    if sys.argv[1:2] == [name]:
        return "semcom " + shlex.join(sys.argv[1:])
    positional = list(arguments)
    words = ["semcom", name, *(str(ctx.params[a]) for a in positional)]
    for key, value in ctx.params.items():
        if value is None or key in positional:
            continue
        flag = key.replace("_", "-")
        if isinstance(value, bool):
            words.append(("--half" if value else "--float") if key == "half" else
                         (f"--{flag}" if value else f"--no-{flag}"))
        else:
            words += [f"--{flag}", str(value)]
    return shlex.join(words)


def comma_list(text: str) -> list[str]:
    """``"192, 160,160"`` -> ``["192", "160", "160"]`` (the record's field types convert the items)."""
    return [v for v in text.replace(" ", "").split(",") if v]


def typed_options(ctx: typer.Context, names: Iterable[str]) -> dict[str, Any]:
    """The options among ``names`` that were given on the command line (not left at their default)."""
    out = {}
    for name in names:
        source = ctx.get_parameter_source(name)
        if name in ctx.params and source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            out[name] = ctx.params[name]
    return out


def _is_list(cls: type[FlatConfig], path: tuple[str, ...]) -> bool:
    model: Any = cls
    for part in path[:-1]:
        model = model.model_fields[part].annotation
    annotation = model.model_fields[path[-1]].annotation
    kinds = {typing.get_origin(a) for a in (annotation, *typing.get_args(annotation))}
    return bool(kinds & {list, tuple})


def build_config(cls: type[C], values: Mapping[str, Any], what: str, options: Mapping[str, str] | None = None) -> C:
    """``cls`` from flat ``values``; a comma-separated text for a list field is split first.

    Raises :class:`~semcom.errors.SemcomError` naming the options (``--eval-snrs: ...``); ``options``
    maps a flat name to the option that sets it where the two differ (``{"snr_db": "snr"}``).
    """
    fields = cls.flat_fields()
    flat = {k: comma_list(v) if isinstance(v, str) and k in fields and _is_list(cls, fields[k]) else v
            for k, v in values.items()}
    try:
        return cls.from_dict(flat)
    except ValidationError as exc:
        names = {path: f"--{(options or {}).get(name, name).replace('_', '-')}" for name, path in fields.items()}
        names.update({(record,): "" for record in cls.flat_names})  # a record's own check: its message
        raise SemcomError(f"invalid {what}: {describe_errors(exc, names)}") from None
