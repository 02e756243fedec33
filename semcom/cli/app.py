"""The ``semcom`` typer app. Commands live in sibling modules; this file only wires them.

Heavy imports (torch, Sionna) happen inside the commands so that ``semcom --help`` is fast.
"""

from __future__ import annotations

import importlib
import sys

import typer

app = typer.Typer(
    name="semcom",
    help="Semantic-communication simulator: multi-resolution deep JSCC vs. classical SSCC over Sionna channels.\n\n"
    "Example: semcom run scenarios/quickstart.yaml --out results/quickstart",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (module, function, command name): each module keeps its commands, this table wires them.
_COMMANDS = [
    ("semcom.cli.listing", "list_cmd", "list"),
    ("semcom.cli.listing", "models_cmd", "models"),
    ("semcom.cli.scenario", "run_cmd", "run"),
    ("semcom.cli.scenario", "validate_cmd", "validate"),
    ("semcom.cli.scenario", "show_cmd", "show"),
    ("semcom.cli.scenario", "plot_cmd", "plot"),
    ("semcom.cli.train", "train_cmd", "train"),
    ("semcom.cli.linear", "fit_linear_cmd", "fit-linear"),
    ("semcom.cli.receivers", "train_receiver_cmd", "train-receiver"),
    ("semcom.cli.bler", "bler_cmd", "bler"),
]



def _version(value: bool) -> None:
    if value:
        from semcom import __version__

        typer.echo(f"semcom {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Semantic-communication simulator."""


for _module, _func, _name in _COMMANDS:
    try:
        _mod = importlib.import_module(_module)
    except ModuleNotFoundError as _exc:  # a command module not written yet must not break the others
        if _exc.name != _module:
            raise
        continue
    app.command(_name)(getattr(_mod, _func))


def main() -> None:
    """Console entry point: user errors print one line and exit 1, never a traceback."""
    from semcom.errors import SemcomError

    try:
        app()
    except SemcomError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
