"""The ``semcom`` typer app. Commands live in sibling modules; this file only wires them.

Heavy imports (torch, Sionna) happen inside the commands so that ``semcom --help`` is fast.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from typing import Any

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
    ("semcom.cli.slim", "slim_cmd", "slim"),
    ("semcom.cli.adapt", "adapt_cmd", "adapt"),
    ("semcom.cli.bler", "bler_cmd", "bler"),
]



def _version(value: bool) -> None:
    if value:
        from semcom import __version__

        typer.echo(f"semcom {__version__}")
        raise typer.Exit()


_debug = {"on": bool(os.environ.get("SEMCOM_DEBUG"))}


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", help="On an error, show the full traceback (for bug reports) "
                                                      "instead of one line. Also: SEMCOM_DEBUG=1."),
    allow_code: bool = typer.Option(False, "--allow-code", help="Let scenario files name plug-in factories by "
                                    "module path (package.module:function): that imports and runs the "
                                    "module. Only for files you trust (docs/security.md). Also: "
                                    "SEMCOM_ALLOW_CODE=1."),
    allow_unverified: bool = typer.Option(False, "--allow-unverified", help="Load weights that have no card "
                                          "with a sha256 to check them against (with a warning). Also: "
                                          "SEMCOM_ALLOW_UNVERIFIED=1."),
) -> None:
    """Semantic-communication simulator."""
    from semcom.errors import ALLOW_CODE_ENV, ALLOW_UNVERIFIED_ENV

    _debug["on"] = _debug["on"] or debug
    # Environment variables, so that the worker processes of a run inherit the choice.
    if allow_code:
        os.environ[ALLOW_CODE_ENV] = "1"
    if allow_unverified:
        os.environ[ALLOW_UNVERIFIED_ENV] = "1"


for _module, _func, _name in _COMMANDS:
    app.command(_name)(getattr(importlib.import_module(_module), _func))


def error_line(exc: BaseException) -> str:
    """The one line a user sees for ``exc``: what went wrong, where, and what to do."""
    from semcom.errors import SemcomError

    if isinstance(exc, SemcomError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:  # the machine's doing: a full disk, a permission
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror} (free space or fix the permission, then run the same command again)"
    return (f"unexpected {type(exc).__name__}: {exc} (a bug in semcom: rerun with --debug for the traceback "
            "and report it)")


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    from semcom.errors import SemcomWarning

    if issubclass(category, SemcomWarning) and not _debug["on"]:
        typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)
    else:
        _python_warning(message, category, filename, lineno, file, line)


_python_warning = warnings.showwarning


def main() -> None:
    """Console entry point: every error is one ``error:`` line and exit code 1; ``--debug`` shows tracebacks."""
    warnings.showwarning = _show_warning
    try:
        app()
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if _debug["on"]:
            raise
        typer.secho(f"error: {error_line(exc)}", fg=typer.colors.RED, err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
