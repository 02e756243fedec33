"""A zoo model's card as text for an 80-column terminal (``semcom models NAME``).

The card is the JSON record beside the weights (``semcom/zoo/weights/NAME.json``); this turns it into
sections a reader can take in: what the model is, the data it was trained on, the channel and SNRs,
its layers and symbols, its test results per layer at each SNR, the exact training command, and
the sha256 check of the weights. ``semcom models NAME --json`` prints the record itself. Facts the
card does not have are left out, never guessed.
"""

from __future__ import annotations

import shlex
import textwrap
from collections.abc import Sequence
from typing import Any

__all__ = ["WIDTH", "card_text", "wrap_command"]

WIDTH = 80
_INDENT = "  "


def _para(text: str, indent: str = _INDENT) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_on_hyphens=False, break_long_words=False) or [indent]


def wrap_command(command: str, indent: str = _INDENT) -> list[str]:
    """A shell command cut into lines of at most 80 columns, each but the last ending in `` \\``,
    so that it can be pasted as it is; an option stays on one line with its value."""
    words = shlex.split(command)
    groups: list[str] = []
    for word in words:
        quoted = shlex.quote(word)
        if groups and not word.startswith("-") and groups[-1].startswith("-") and " " not in groups[-1]:
            groups[-1] += " " + quoted  # an option's value stays with it
        else:
            groups.append(quoted)
    lines: list[str] = []
    line = indent
    for group in groups:
        if line.strip() and len(line) + 1 + len(group) + 2 > WIDTH:
            lines.append(line + " \\")
            line = indent + "    "
        line += ("" if not line.strip() else " ") + group
    lines.append(line)
    return lines


def _fmt(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"


def _results(test: dict[str, Any]) -> list[str]:
    """Per layer and SNR: mean PSNR, pooled PSNR and accuracy, one small table each."""
    snrs: Sequence[float] = test.get("snr_db") or []
    if not snrs:
        return []
    head = f"{_INDENT}{'SNR dB':<14}" + "".join(f"{s:>8g}" for s in snrs)
    out = []
    for key, title, scale, digits in (("psnr_db", "mean PSNR dB", 1.0, 2),
                                      ("psnr_pooled_db", "pooled PSNR dB", 1.0, 2),
                                      ("accuracy", "accuracy %", 100.0, 1)):
        layers = [layer for layer in test.get(key) or [] if layer]
        if not layers:
            continue
        out.append(f"{_INDENT}{title}")
        out.append(head)
        for i, values in enumerate(layers, start=1):
            label = f"layer 1..{i}" if i > 1 else "layer 1"
            out.append(f"{_INDENT}{label:<14}" + "".join(
                f"{_fmt(v * scale if isinstance(v, int | float) else v, digits):>8}" for v in values))
    return out


def _what(name: str, description: str, card: dict[str, Any]) -> list[str]:
    from semcom.jscc.checkpoint import epochs_label

    arch = card.get("architecture") or {}
    lines = _para(description or card.get("description", ""))
    facts = []
    if arch.get("name"):
        facts.append(f"architecture {arch['name']}")
    anchor = arch.get("anchor") or {}
    if anchor:
        facts.append(f"anchored on a linear code ({anchor.get('transform', '?')} transform, "
                     f"{anchor.get('allocation', '?')} allocation designed at {anchor.get('design_snr_db', '?'):g} "
                     f"dB, {anchor.get('power', '?')} power)")
    if card.get("parameters"):
        facts.append(f"{card['parameters']:,} parameters stored as {card.get('storage_dtype', '?')}")
    if card.get("epochs") is not None:
        facts.append(f"{epochs_label(card)} epochs of training")
    parent = card.get("init_from") or {}
    if parent.get("name"):
        facts.append(f"fine-tuned from {parent['name']}")
    if card.get("date"):
        facts.append(f"made {str(card['date'])[:10]}")
    if facts:
        lines += _para("; ".join(facts) + ".")
    return lines


def _data(card: dict[str, Any]) -> list[str]:
    data = card.get("dataset")
    if not isinstance(data, dict):
        return []
    size = f"{data['images']:,} of the {data['official_size']:,} {data.get('split', '')} images" \
        if isinstance(data.get("images"), int) and isinstance(data.get("official_size"), int) else \
        f"{data.get('split', '?')} split"
    lines = _para(f"{data.get('name', '?')}: {size}.")
    if data.get("excluded"):
        lines += _para(f"Left out: {data['excluded']}.")
    validation = data.get("validation") or {}
    if validation.get("images"):
        lines += _para(f"Validation: {validation['images']:,} training images held out (seed "
                       f"{validation.get('seed', '?')}); they pick the best checkpoint, never the test images.")
    if data.get("note"):
        lines += _para(data["note"])
    return lines


def _channel(card: dict[str, Any]) -> list[str]:
    channel = card.get("channel") or {}
    lines = []
    if channel:
        text = str(channel.get("name", "?"))
        if channel.get("name") != "awgn":
            text += f", one fading gain per {channel.get('block', '?')}, CSI {channel.get('csi', '?')}"
        lines += _para(f"Trained on {text}.")
    snr = card.get("training_snr_db")
    if isinstance(snr, dict) and {"min", "max"} <= set(snr):
        lines += _para(f"Training SNR {snr['min']:g} to {snr['max']:g} dB ({snr.get('distribution', '?')}).")
    if card.get("usage"):
        lines += _para(f"Use: {card['usage']}.")
    return lines


def _layers(card: dict[str, Any]) -> list[str]:
    symbols = card.get("layer_symbols") or []
    if not symbols:
        return []
    rho = card.get("bandwidth_ratio_cumulative") or []
    lines = [f"{_INDENT}{'layer':<8}{'symbols':>8}{'total':>8}{'rho':>9}"]
    total = 0
    for i, k in enumerate(symbols):
        total += int(k)
        lines.append(f"{_INDENT}{i + 1:<8}{k:>8}{total:>8}{_fmt(rho[i] if i < len(rho) else None, 4):>9}")
    lines += _para("symbols: complex channel uses per image; rho = k / n, the channel uses of layers 1..i "
                   "over the image's n pixel values.")
    return lines


def card_text(name: str, description: str, card: dict[str, Any], check: str) -> str:
    """The card of zoo model ``name`` as text (every line at most 80 columns where words allow).

    Args:
        name: the zoo name.
        description: its one-line description (the zoo's).
        card: the JSON record.
        check: the verification of its weights: ``"ok"`` or what failed.
    """
    test = card.get("test") or {}
    count = test.get("count")
    test_title = "Test results" + (f" on {count:,} {test.get('dataset', '')} test images"
                                   if isinstance(count, int) else "")
    sections: list[tuple[str, list[str]]] = [
        ("What it is", _what(name, description, card)),
        ("Data", _data(card)),
        ("Channel and SNRs", _channel(card)),
        ("Layers and symbols", _layers(card)),
        (test_title, _results(test)),
    ]
    if card.get("command"):
        sections.append(("Training command (DATA: your data root, --data-root or $SEMCOM_DATA)",
                         wrap_command(card["command"])))
    verdict = "ok, the weights file matches the card" if check == "ok" else f"FAILED: {check}"
    sections.append(("Check", _para(f"sha256 {card.get('sha256', '?')}") + _para(
        f"{card.get('weights_file', name + '.safetensors')}: {verdict}")))
    out = [name, "=" * len(name)]
    for title, lines in sections:
        if lines:
            out += ["", title, *lines]
    return "\n".join(out)
