"""The scenario file reference, generated from the schema: every section and field, as Markdown.

docs/guide.md carries this text between two marker comments, and a test checks that it equals what
:func:`scenario_reference` returns, so the guide cannot drift from the schema
(:func:`semcom.scenarios.schema.scenario_json_schema`, itself generated from the pydantic models).
``python -m semcom.scenarios.reference`` prints it; ``--write FILE`` replaces the text between the
markers in FILE.

One table per section (top level, dataset, each system type, channel, users, an SNR range, quick):
field, type with its limits, default, and the field's description from the schema.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from semcom.scenarios.schema import scenario_json_schema

__all__ = ["BEGIN", "END", "replace_reference", "scenario_reference"]

BEGIN = "<!-- scenario-reference:begin (generated: python -m semcom.scenarios.reference) -->"
END = "<!-- scenario-reference:end -->"

# (heading, where the section sits in a file, schema definition or None for the top level)
_SECTIONS: list[tuple[str, str, str | None]] = [
    ("Top level", "", None),
    ("`dataset`", "dataset:", "DatasetSpec"),
    ("`systems`, `type: jscc`", "systems: - type: jscc", "JsccSystemSpec"),
    ("`systems`, `type: linear`", "systems: - type: linear", "LinearSystemSpec"),
    ("`systems`, `type: sscc`", "systems: - type: sscc", "SsccSystemSpec"),
    ("`systems`, `type: receiver`", "systems: - type: receiver", "ReceiverSystemSpec"),
    ("`systems`, `type: plugin`", "systems: - type: plugin", "PluginSystemSpec"),
    ("`channel`", "channel:", "ChannelSpec"),
    ("`users`", "users: - ...", "UserSpec"),
    ("SNR range `{start, stop, step}`", "users: - snr_db: {...}", "SnrRange"),
    ("`quick`", "quick:", "QuickSpec"),
]

# Sections other sections point at by their schema definition's name.
_NAMES = {"DatasetSpec": "`dataset` section", "ChannelSpec": "`channel` section", "UserSpec": "`users` item",
          "SnrRange": "SNR range", "QuickSpec": "`quick` section", "JsccSystemSpec": "system",
          "LinearSystemSpec": "system", "SsccSystemSpec": "system", "ReceiverSystemSpec": "system",
          "PluginSystemSpec": "system"}


def _number(value: float) -> str:
    if isinstance(value, int) and abs(value) >= 10**6:
        exponent = len(str(abs(value))) - 1
        if value == 10**exponent:
            return f"10^{exponent}"
        if value == 2**63:
            return "2^63"
        return f"{value:,}"
    return f"{value:g}"


def _limits(node: dict[str, Any]) -> str:
    low = node.get("minimum")
    high = node.get("maximum")
    parts = []
    if low is not None and high is not None:
        parts.append(f"{_number(low)}..{_number(high)}")
    elif low is not None:
        parts.append(f">= {_number(low)}")
    elif high is not None:
        parts.append(f"<= {_number(high)}")
    if "exclusiveMinimum" in node:
        parts.append(f"> {_number(node['exclusiveMinimum'])}")
    if "exclusiveMaximum" in node:
        parts.append(f"< {_number(node['exclusiveMaximum'])}")
    if node.get("minItems") or node.get("maxItems"):
        low_items, high_items = node.get("minItems"), node.get("maxItems")
        parts.append(f"{low_items or 0}..{_number(high_items)} items" if high_items else f"{low_items}+ items")
    if node.get("minLength"):
        parts.append("not empty")
    return ", ".join(parts)


def _type(node: dict[str, Any]) -> str:
    """A JSON Schema node as a short type: ``integer >= 1``, ``list of number``, ``image | layer``."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _NAMES.get(name, name)
    for key in ("anyOf", "oneOf"):
        if key in node:
            options = [_type(n) for n in node[key] if n.get("type") != "null"]
            return " or ".join(dict.fromkeys(options))
    if "const" in node:
        return f"`{node['const']}`"
    if "enum" in node:
        return " or ".join(f"`{v}`" for v in node["enum"])
    kind = node.get("type", "any")
    words = {"string": "text", "integer": "integer", "number": "number", "boolean": "true or false",
             "object": "mapping", "array": "list"}
    text = words.get(kind, str(kind))
    if kind == "array" and "items" in node:
        text = f"list of {_type(node['items'])}"
    limits = _limits(node)
    if node.get("pattern"):
        limits = ", ".join(p for p in (limits, "see description") if p)
    return f"{text} ({limits})" if limits else text


def _default(node: dict[str, Any], required: bool) -> str:
    if required:
        return "required"
    if "default" not in node:
        if "$ref" in node:
            return "its defaults"
        return "`{}`" if node.get("type") == "object" else "-"
    value = node["default"]
    if value is None:
        return "none"
    return f"`{json.dumps(value)}`" if not isinstance(value, str) else (f"`{value}`" if value else '`""`')


def _cell(text: str) -> str:
    """One line of a Markdown table cell: docstrings' double backticks as single ones, pipes escaped."""
    return re.sub(r"\s+", " ", text).replace("``", "`").replace("|", "\\|").strip()


def _table(model: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    required = set(model.get("required", []))
    lines = ["| field | type | default | description |", "|---|---|---|---|"]
    for name, node in model.get("properties", {}).items():
        description = node.get("description")
        if description is None and "$ref" in node:  # a section: its own description
            description = defs[node["$ref"].rsplit("/", 1)[-1]].get("description", "")
        if name == "systems":
            description = f"{description}; one table below per `type`"
        lines.append(f"| `{name}` | {_cell(_type(node))} | {_cell(_default(node, name in required))} | "
                     f"{_cell(description or '')} |")
    return lines


def scenario_reference() -> str:
    """The reference of every section and field of a scenario file, as Markdown (no trailing newline)."""
    schema = scenario_json_schema()
    defs = schema["$defs"]
    out = ["Generated from the schema (`semcom validate --schema`); `required` marks the fields a file "
           "must give, everything else has the default shown."]
    for heading, where, name in _SECTIONS:
        model = schema if name is None else defs[name]
        out += ["", f"### {heading}", ""]
        summary = model.get("description", "") if name is not None else "The scenario file itself."
        out.append(_cell(summary) + (f" In a file: `{where}`." if where else ""))
        out += ["", *_table(model, defs)]
    return "\n".join(out)


def replace_reference(text: str, reference: str | None = None) -> str:
    """``text`` with everything between :data:`BEGIN` and :data:`END` replaced by the reference.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        raise ValueError(f"the text has no '{BEGIN}' ... '{END}' markers")
    body = scenario_reference() if reference is None else reference
    return text[: begin + len(BEGIN)] + "\n" + body + "\n" + text[end:]


def current_reference(text: str) -> str:
    """What stands between the markers of ``text`` now (stripped of the newlines around it)."""
    begin, end = text.find(BEGIN), text.find(END)
    if begin < 0 or end < begin:
        raise ValueError(f"the text has no '{BEGIN}' ... '{END}' markers")
    return text[begin + len(BEGIN): end].strip("\n")


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m semcom.scenarios.reference [--write FILE]``."""
    parser = argparse.ArgumentParser(prog="python -m semcom.scenarios.reference",
                                     description="Print the scenario file reference (Markdown), or write it "
                                                 "between the markers of a file.")
    parser.add_argument("--write", type=Path, metavar="FILE", help="replace the reference in FILE")
    args = parser.parse_args(argv)
    if args.write is None:
        print(scenario_reference())
        return
    path: Path = args.write
    path.write_text(replace_reference(path.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
