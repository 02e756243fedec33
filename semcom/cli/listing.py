"""``semcom list`` and ``semcom models``."""

from __future__ import annotations

import json as _json
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from semcom.zoo import ZooEntry


def list_cmd(
    kind: str = typer.Argument(None, help="Only this kind: systems, channels, codecs, mcs, models, receivers, "
                                          "scenarios, datasets."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List what is available (channels, codecs, models, receivers, scenarios, datasets).

    Example: semcom list models --json
    """
    from semcom.catalog import catalog
    from semcom.errors import SemcomError

    try:
        data = catalog([kind] if kind else None)
    except KeyError as exc:
        raise SemcomError(str(exc.args[0])) from None
    if as_json:
        typer.echo(_json.dumps(data, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for k, entries in data.items():
        table = Table(title=k, title_justify="left", show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for e in entries:
            table.add_row(e["name"], e["description"])
        console.print(table)
        console.print()


def models_cmd(
    name: str = typer.Argument(None, help="Print the card of this zoo model.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: the list, or with NAME the card's raw "
                                                      "record."),
) -> None:
    """List the pretrained zoo models; with a NAME, print its card.

    The card says what the model is, its data, channel and SNRs, layers and symbols, its test results
    per layer at each SNR, the exact training command and whether the weights match its sha256.

    Example: semcom models mnist-mr3-awgn
    """
    from semcom.errors import SemcomError
    from semcom.zoo import list_models

    entries = {e.name: e for e in list_models()}
    if name is not None:
        if name not in entries:
            raise SemcomError(f"no zoo model '{name}'; available: {', '.join(entries) or '(none)'}")
        e = entries[name]
        if not e.available:
            raise SemcomError(f"zoo model '{name}' is registered but its files are missing ({e.path})")
        state = e.check()
        if as_json:
            typer.echo(_json.dumps(e.card, indent=2))
        else:
            from semcom.cli.model_card import card_text

            typer.echo(card_text(e.name, e.description, e.card, state))
        if state != "ok":
            raise SemcomError(f"zoo model '{name}' fails verification: {state} ({e.path}); reinstall semcom")
        return
    checks = {n: e.check() for n, e in entries.items()}  # every listed file is verified, not assumed
    rows = [_summary(e) | {"check": checks[n]} for n, e in entries.items()]
    bad = [f"{n} ({state})" for n, state in checks.items() if state != "ok"]
    if as_json:
        typer.echo(_json.dumps(rows, indent=2))
        if bad:
            raise SemcomError(f"zoo models that fail verification: {', '.join(bad)}; reinstall semcom")
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(title="semcom zoo: test PSNR and accuracy at 10 dB, layers 1..L", title_justify="left",
                  caption="semcom models NAME prints a model's card", caption_justify="left",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("name", style="bold cyan", overflow="fold")
    for col in ("symbols", "PSNR dB", "acc %", "MB", "sha256"):
        table.add_column(col, no_wrap=True, justify="right" if col == "MB" else "left")
    for r in rows:
        check = "ok" if r["check"] == "ok" else f"[red]{r['check']}[/red]"
        table.add_row(r["name"], r["layer_symbols"], r["psnr_10db"], r["accuracy_10db"],
                      r["size"].removesuffix(" MB"), check)
    Console().print(table)
    if bad:
        raise SemcomError(f"zoo models that fail verification: {', '.join(bad)}; reinstall semcom")


def _summary(e: ZooEntry) -> dict[str, str]:
    """One table row from a zoo entry's card (missing facts are shown as '-')."""
    from semcom.jscc.checkpoint import epochs_label

    card = e.card
    test = card.get("test", {})
    psnr = acc = "-"
    if 10.0 in test.get("snr_db", []):
        i = test["snr_db"].index(10.0)
        psnr = "/".join(f"{layer[i]:.1f}" for layer in test.get("psnr_db", []))
        acc = "/".join(f"{100 * layer[i]:.0f}" for layer in test.get("accuracy", []) if layer)
    return {
        "name": e.name,
        "description": e.description,
        "available": str(e.available),
        "dataset": card.get("dataset", {}).get("name", "-") if isinstance(card.get("dataset"), dict) else "-",
        "layer_symbols": "/".join(map(str, card.get("layer_symbols", []))) or "-",
        "channel": card.get("channel", {}).get("name", "-") if isinstance(card.get("channel"), dict) else "-",
        "epochs": epochs_label(card),
        "psnr_10db": psnr or "-",
        "accuracy_10db": acc or "-",
        "size": f"{e.size_bytes / 1e6:.1f} MB" if e.available else "missing",
    }
