"""Read a scenario file: YAML -> :class:`~semcom.scenarios.schema.Scenario`, with errors on lines.

Every problem, whether YAML syntax, a pydantic field error, a cross-field rule or a name that no
registry knows, is reported as ``FILE:LINE: FIELD: WHAT (allowed: ...)``. Lines come from the YAML
nodes' marks: the loader keeps the line of every key and list item, and maps pydantic's error
locations (which also name union members, e.g. ``systems.0.jscc.model``) back onto the document.
"""

from __future__ import annotations

import difflib
import hashlib
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from semcom.errors import ScenarioError, SemcomError
from semcom.scenarios.builtin import resolve_scenario
from semcom.scenarios.schema import (
    FieldPath,
    JsccSystemSpec,
    PluginSystemSpec,
    Problem,
    Scenario,
    SsccSystemSpec,
    format_path,
)

__all__ = ["load_scenario", "parse_scenario", "reference_problems", "scenario_sha256"]

MAX_LISTED = 8  # problems listed in one message


def load_scenario(source: str | Path, *, check_references: bool = True) -> Scenario:
    """Read and validate a scenario file (a path, or a built-in name such as ``quickstart``).

    Args:
        source: the YAML file, or the name of a registered scenario.
        check_references: also check names against the registries (datasets, channels, codecs, MCS,
            zoo models) and that checkpoint files exist.

    Raises:
        ScenarioError: the message names the file, line and field of each problem.
    """
    path = resolve_scenario(source)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read ({exc})") from None
    return parse_scenario(text, path, check_references=check_references)


def parse_scenario(text: str, path: Path | None = None, *, check_references: bool = True) -> Scenario:
    """Validate scenario ``text`` (read from ``path``, used in messages and for relative paths)."""
    where = str(path) if path is not None else "<scenario>"
    data, lines = _read_yaml(text, where)
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}:1: a scenario is a mapping of fields (name, dataset, systems, channel, "
                            f"users, ...), not {type(data).__name__}")
    try:
        scenario = Scenario.model_validate(data, context={"defer_checks": True})
    except ValidationError as exc:
        problems = _pydantic_problems(exc.errors(), data)
        if check_references:  # one round of fixes: name the unknown dataset/channel too
            problems += _raw_name_problems(data)
        raise ScenarioError(_format(where, problems, lines)) from None
    scenario.attach_source(path, text, lines)
    problems = scenario.problems()
    if check_references:
        problems += reference_problems(scenario)
    if problems:
        raise ScenarioError(_format(where, problems, lines))
    return scenario


def scenario_sha256(scenario: Scenario) -> str:
    """sha256 of the scenario text (the file's bytes as read)."""
    return hashlib.sha256(scenario.text.encode("utf-8")).hexdigest()


# -- YAML with line numbers ---------------------------------------------------------------------------


def _read_yaml(text: str, where: str) -> tuple[Any, dict[FieldPath, int]]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError(f"{where}:1: the file is empty")
        lines: dict[FieldPath, int] = {}
        _mark_lines(node, (), lines, where, set())
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ScenarioError(f"{where}:{line}: YAML syntax error: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{where}: YAML error: {exc}") from None
    except RecursionError:
        raise ScenarioError(f"{where}: nested too deeply to be a scenario (lists or mappings inside each "
                            "other thousands of levels down)") from None
    finally:
        loader.dispose()
    return data, lines


def _mark_lines(
    node: yaml.Node, path: FieldPath, lines: dict[FieldPath, int], where: str, seen_nodes: set[int]
) -> None:
    """Record the 1-based line of every key and list item below ``node``; refuse duplicate keys.

    Also refuses YAML aliases (``*name``) of lists and mappings: an alias makes the composer hand out
    the same node twice, and nested aliases grow exponentially when expanded (the "billion laughs");
    a scenario never needs them.
    """
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        if id(node) in seen_nodes:
            line = node.start_mark.line + 1
            raise ScenarioError(f"{where}:{line}: {format_path(path) or 'the file'}: repeats, through a YAML alias "
                                f"(*name), the list or mapping anchored on line {line}; aliases of lists and "
                                "mappings are not allowed in scenario files: write the value out")
        seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ScenarioError(f"{where}:{line}: {format_path((*path, key))}: duplicate key (first on "
                                    f"line {seen[key]}); each field may appear once")
            seen[key] = line
            lines[(*path, key)] = line
            _mark_lines(value_node, (*path, key), lines, where, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _mark_lines(item, (*path, i), lines, where, seen_nodes)


def _line_of(path: FieldPath, lines: dict[FieldPath, int]) -> int:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def _format(where: str, problems: list[Problem], lines: dict[FieldPath, int]) -> str:
    located = sorted(((_line_of(p, lines), format_path(p), msg) for p, msg in problems), key=lambda t: t[0])
    out = [f"{where}:{line}: {field}: {msg}" for line, field, msg in located[:MAX_LISTED]]
    if len(located) > MAX_LISTED:
        out.append(f"... and {len(located) - MAX_LISTED} more problems")
    return "\n".join(out)


# -- pydantic errors -> (path in the document, message) -----------------------------------------------


def _suggestion(loc: tuple[Any, ...]) -> str | None:
    """The field an unknown field ``loc[-1]`` was probably meant to be (a close spelling)."""
    model = _model_at(loc[:-1])
    if model is None:
        return None
    name = str(loc[-1])
    prefixed = [f for f in model.model_fields if f.startswith(name) or name.startswith(f)]
    close = prefixed or difflib.get_close_matches(name, list(model.model_fields), n=1, cutoff=0.8)
    return close[0] if close else None


def _pydantic_problems(errors: list[Any], data: Any) -> list[Problem]:
    """Problems of a pydantic error list; a misspelt field is one problem, not also a missing one."""
    meant = {(tuple(e["loc"][:-1]), _suggestion(tuple(e["loc"])))
             for e in errors if e["type"] == "extra_forbidden"}
    return [_pydantic_problem(e, data) for e in errors
            if not (e["type"] == "missing" and (tuple(e["loc"][:-1]), e["loc"][-1]) in meant)]


def _pydantic_problem(err: Any, data: Any) -> Problem:
    loc = tuple(err["loc"])
    kind = err["type"]
    # The document path: pydantic's location without the union tags it inserts.
    path: list[str | int] = []
    cur = data
    for i, part in enumerate(loc):
        if i and isinstance(loc[i - 1], int) and i + 1 < len(loc) and isinstance(cur, dict) and cur.get("type") == part:
            continue  # the union's tag pydantic puts after a list index (`receiver` is also a field name)
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
            path.append(part)
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
            path.append(part)
        elif i == len(loc) - 1 and kind == "missing":
            path.append(part)
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = ", ".join(model.model_fields) if model else "?"
        meant = _suggestion(loc)
        hint = f" (did you mean '{meant}'?)" if meant else ""
        return tuple(path), f"unknown field '{loc[-1]}'{hint}; allowed: {allowed}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        key = str(ctx.get("discriminator", "type")).strip("'")
        expected = ", ".join(_union_tags(loc, key))
        got = f"'{ctx['tag']}' is not allowed" if "tag" in ctx else "missing"
        return (*path, key), f"{got}; allowed: {expected}"
    description = _description(loc)
    if kind == "missing":
        hint = f" ({description})" if description else ""
        return tuple(path), f"missing required field '{loc[-1]}'{hint}"
    if kind == "literal_error":
        return tuple(path), f"{err['input']!r} is not allowed; allowed: {ctx.get('expected', '?')}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if not description:
        return tuple(path), msg
    return tuple(path), f"{msg} (expected: {description})"


def _unwrap(tp: Any) -> tuple[Any, tuple[Any, ...]]:
    """Strip ``Annotated``; return ``(type, metadata)``."""
    meta: tuple[Any, ...] = ()
    while typing.get_origin(tp) is typing.Annotated:
        args = typing.get_args(tp)
        tp, meta = args[0], meta + tuple(args[1:])
    return tp, meta


def _step(tp: Any, part: str | int) -> tuple[Any, tuple[type[BaseModel], str] | None] | None:
    """Follow one element of a pydantic location from type ``tp``; None when it cannot."""
    tp, _ = _unwrap(tp)
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if isinstance(part, str) and part in tp.model_fields:
            return tp.model_fields[part].annotation, (tp, part)
        return None
    if origin in (list, tuple) and isinstance(part, int):
        return typing.get_args(tp)[0], None
    if origin is dict:
        return typing.get_args(tp)[1], None
    if origin in (typing.Union, types.UnionType):
        for member in typing.get_args(tp):
            inner, meta = _unwrap(member)
            if any(getattr(m, "tag", None) == part for m in meta):
                return member, None
            if isinstance(inner, type) and issubclass(inner, BaseModel) and "type" in inner.model_fields:
                if part in typing.get_args(inner.model_fields["type"].annotation):
                    return inner, None
        non_none = [m for m in typing.get_args(tp) if m is not type(None)]
        if len(non_none) == 1:  # Optional[X]: the location goes on inside X
            return _step(non_none[0], part)
    return None


def _union_tags(loc: tuple[Any, ...], key: str) -> list[str]:
    """The values of discriminator ``key`` that the union at ``loc`` admits."""
    tp: Any = Scenario
    for part in loc:
        nxt = _step(tp, part)
        if nxt is None:
            return []
        tp = nxt[0]
    tp, _ = _unwrap(tp)
    tags = []
    for member in typing.get_args(tp):
        inner, _ = _unwrap(member)
        if isinstance(inner, type) and issubclass(inner, BaseModel) and key in inner.model_fields:
            tags += [str(t) for t in typing.get_args(inner.model_fields[key].annotation)]
    return tags


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    tp: Any = Scenario
    for part in loc:
        nxt = _step(tp, part)
        if nxt is None:
            return None
        tp = nxt[0]
    tp, _ = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _description(loc: tuple[Any, ...]) -> str | None:
    """Description of the last model field along ``loc``."""
    tp: Any = Scenario
    last: tuple[type[BaseModel], str] | None = None
    for part in loc:
        nxt = _step(tp, part)
        if nxt is None:
            break
        tp, field = nxt
        last = field or last
    if last is None:
        return None
    return last[0].model_fields[last[1]].description


# -- names the registries must know -------------------------------------------------------------------


def _raw_name_problems(data: dict[str, Any]) -> list[Problem]:
    """Unknown dataset and channel names in a document that failed schema validation elsewhere."""
    dataset, channel = data.get("dataset"), data.get("channel")
    return _name_problems(
        dataset.get("name") if isinstance(dataset, dict) else None,
        channel.get("type") if isinstance(channel, dict) else None,
    )


def _name_problems(dataset: Any, channel: Any) -> list[Problem]:
    """The dataset and channel names (when given as strings) that no registry knows."""
    from semcom.channels import CHANNELS
    from semcom.data import DATASETS

    out: list[Problem] = []
    if isinstance(dataset, str) and dataset not in DATASETS:
        out.append((("dataset", "name"), f"unknown dataset '{dataset}'; allowed: {', '.join(DATASETS)}"))
    if isinstance(channel, str) and channel not in CHANNELS:
        out.append((("channel", "type"), f"unknown channel '{channel}'; allowed: {', '.join(CHANNELS.names())}"))
    return out


def reference_problems(scenario: Scenario) -> list[Problem]:
    """Names no registry knows and checkpoint files that are missing, with their field paths.

    Checks what exists in this installation: datasets, channels, zoo models, codecs, MCS names and
    plug-in factories (an installed entry point; a module path only with ``--allow-code``, and then
    it must import).
    """
    out = _name_problems(scenario.dataset.name, scenario.channel.type)
    from semcom.jscc.zoo import MODELS as models  # lazy: torch, and `semcom --help` stays fast
    from semcom.sscc.codecs import CODECS as codecs
    from semcom.sscc.mcs import get_mcs as parse_mcs

    for i, spec in enumerate(scenario.systems):
        if isinstance(spec, JsccSystemSpec):
            if spec.is_path():
                path = scenario.base_dir() / spec.model
                if not path.is_file():
                    out.append((("systems", i, "model"), f"checkpoint file not found: {path}"))
            elif spec.model not in models:
                out.append((("systems", i, "model"),
                            f"unknown zoo model '{spec.model}'; allowed: {', '.join(models.names())} or a "
                            f".safetensors path"))
        elif isinstance(spec, SsccSystemSpec):
            if spec.codec not in codecs:
                out.append((("systems", i, "codec"),
                            f"unknown codec '{spec.codec}'; allowed: {', '.join(codecs.names())}"))
            if spec.mcs not in ("adaptive", "capacity"):
                try:
                    parse_mcs(spec.mcs)
                except ValueError as exc:
                    out.append((("systems", i, "mcs"), f"{exc}; allowed: an MCS name such as 4QAM-1/2 or "
                                                       "16QAM-2/3 (`semcom list mcs`), adaptive or capacity"))
        elif isinstance(spec, PluginSystemSpec):
            out.extend((("systems", i, "factory"), why) for why in _factory_problems(spec.factory))
    return out


def _factory_problems(name: str) -> list[str]:
    from semcom.scenarios.factory import SYSTEMS, plugin_factory

    if ":" not in name and name not in SYSTEMS:
        return [f"unknown system factory '{name}'; installed: {', '.join(SYSTEMS.names()) or 'none'} "
                "(a package.module:function path needs semcom --allow-code)"]
    try:
        factory = plugin_factory(name)
    except SemcomError as exc:
        return [str(exc)]
    return [] if callable(factory) else [f"system factory '{name}' is a {type(factory).__name__}, not a function"]
