"""``semcom list`` and ``semcom models``."""

from __future__ import annotations

import json as _json

import typer


def list_cmd(
    kind: str = typer.Argument(None, help="Only this kind: channels, codecs, mcs, models, receivers, "
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
    name: str = typer.Argument(None, help="Show the full model card of this zoo model."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the pretrained zoo models with their cards.

    Example: semcom models mnist-mr3-awgn
    """
    from semcom.zoo import list_models

    cards = {m["name"]: m for m in list_models()}
    if name is not None:
        if name not in cards:
            from semcom.errors import SemcomError

            raise SemcomError(f"no zoo model '{name}'; available: {', '.join(cards) or '(none)'}")
        typer.echo(_json.dumps(cards[name], indent=2))
        return
    if as_json:
        typer.echo(_json.dumps(list(cards.values()), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="semcom zoo")
    for col in ("name", "dataset", "layers", "symbols", "channel", "epochs", "size"):
        table.add_column(col)
    for m in cards.values():
        table.add_row(*(str(m.get(c, "")) for c in ("name", "dataset", "layers", "symbols", "channel", "epochs",
                                                     "size")))
    Console().print(table)
