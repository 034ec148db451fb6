"""The command line in-process: typer's CliRunner, building each app's click command once.

typer turns an app into its click command from the functions' signatures on every invoke (about
8 ms for `cds-service`); the installed command does it once a process, and so does this runner.
Everything else (streams, environment, exit code, exceptions) is typer's own CliRunner."""

from __future__ import annotations

from typing import Any

import typer
import typer.testing
from typer.main import get_command

_COMMANDS: dict[typer.Typer, Any] = {}


class CliRunner(typer.testing.CliRunner):
    def invoke(self, app: typer.Typer, *args: Any, **kwargs: Any) -> typer.testing.Result:
        command = _COMMANDS.get(app)
        if command is None:
            command = _COMMANDS[app] = get_command(app)
        build = typer.testing._get_command
        typer.testing._get_command = lambda _app: command
        try:
            return super().invoke(app, *args, **kwargs)
        finally:
            typer.testing._get_command = build
