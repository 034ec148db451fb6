"""Command line: `cds-service serve`, `migrate`, `analytics`, `discovery`, `knowledge check`. The
tooling adds its own (`evaluate`, `render`, `replay`, `fixtures-table`, `knowledge diff`: see
cds_tools/cli.py) through the entry-point group `cds_service.commands`."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import typer
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperGroup

from cds_service.config import get_settings
from cds_service.errors import KnowledgeError
from cds_service.knowledge.registry import HookService, load_services
from cds_service.persistence.analytics import format_table, override_summary, window
from cds_service.persistence.store import FeedbackStore

PROG = "cds-service"
EXAMPLE_INSTANT = "2026-11-24T12:00:00Z"


# Click's exception classes, whichever click this typer uses (recent typers carry their own copy):
# found through typer's public BadParameter instead of importing click.
_CLICK_EXCEPTION: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


class OneLineErrors(TyperGroup):
    """Every error is one line on stderr and a non-zero exit: usage mistakes (a missing argument, an
    unknown option or command) too, instead of click's usage box. Commands say their own errors
    through `fail`."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        except _CLICK_EXCEPTION as exc:
            code = getattr(exc, "exit_code", 2)
            if type(exc).__name__ == "NoArgsIsHelpError":  # `cds-service` alone: the help
                typer.echo(getattr(exc, "format_message", str)(), err=True)
            else:
                typer.echo(_usage_line(exc), err=True)
            result = code if isinstance(code, int) else 2
        except typer.Abort:
            typer.echo(f"{PROG}: aborted", err=True)
            result = 1
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)


def _usage_line(exc: Exception) -> str:
    """A usage error in one line: the command, what is wrong, where help is; the valid commands
    when a command name was mistyped."""
    ctx = getattr(exc, "ctx", None)
    where = " ".join([PROG, *str(getattr(ctx, "command_path", "")).split()[1:]])
    message = str(getattr(exc, "format_message", exc.__str__)()).rstrip(".")
    list_commands = getattr(getattr(ctx, "command", None), "list_commands", None)
    if list_commands is not None and message.startswith("No such command"):
        message = message.replace(". Did you mean", " (did you mean").replace("?", "?)")
        message += f"; the commands are: {', '.join(list_commands(ctx))}"
    return f"{where}: {message} (see {where} --help)"


cli = typer.Typer(cls=OneLineErrors, help="PDPH imaging CDS Hooks service.", no_args_is_help=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """End the command with one line on stderr naming the cause, and a non-zero exit."""
    typer.echo(f"{PROG}: {message}", err=True)
    raise typer.Exit(code)


def _instant(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 option value; one line naming the option, not a traceback, when it is not one."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not an ISO 8601 instant (e.g. {EXAMPLE_INSTANT})")


def now_option(value: str | None) -> datetime:
    """The --now option: its instant (with a time zone), or now when it is not given."""
    parsed = _instant(value, "--now")
    if parsed is None:
        return datetime.now(UTC)
    if parsed.tzinfo is None:
        fail(f"--now {value!r} needs a time zone offset (e.g. {EXAMPLE_INSTANT})")
    return parsed


@cli.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
) -> None:
    """Run the service under uvicorn."""
    import uvicorn

    uvicorn.run("cds_service.asgi:app", host=host, port=port, workers=workers, access_log=False)


@cli.command()
def migrate() -> None:
    """Bring the store's schema (DATABASE_URL) to the latest Alembic revision."""
    before, after = FeedbackStore(get_settings().database_url).migrate()
    if before == after:
        typer.echo(f"store schema already current (revision {after}); nothing to do")
    elif before is None:
        typer.echo(f"created the store schema on an empty database (revision {after})")
    else:
        typer.echo(f"migrated the store schema from revision {before} to {after}")


analytics_cli = typer.Typer(
    help="Reports from the store (DATABASE_URL): override analytics; `firing` and `gaps` are the "
    "go-live reports (docs/go-live.md).",
    invoke_without_command=True,
)
cli.add_typer(analytics_cli, name="analytics")


@analytics_cli.callback()
def analytics(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option(help="Start, ISO instant (default: until - 30 days)")
    ] = None,
    until: Annotated[str | None, typer.Option(help="End, ISO instant (default: now)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """Print cards shown, accepted and overridden per scenario and override reason."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        start, end = window(
            _instant(since, "--since"), _instant(until, "--until"), datetime.now(UTC)
        )
    except ValueError as exc:
        fail(str(exc))
    try:
        summary = override_summary(FeedbackStore(get_settings().database_url).engine, start, end)
    except SQLAlchemyError as exc:
        fail(f"cannot read the store ({type(exc).__name__}); is it migrated?")
    typer.echo(summary.model_dump_json(indent=2) if as_json else format_table(summary))


REPORT_FORMATS = ("table", "json", "csv")


def _report_format(value: str) -> str:
    if value not in REPORT_FORMATS:
        fail(f"--format {value!r}: use one of {', '.join(REPORT_FORMATS)}")
    return value


@analytics_cli.command("firing")
def analytics_firing(
    since: Annotated[
        str | None,
        typer.Option(help="Start, ISO instant (default: the last 8 ISO weeks, or 14 days)"),
    ] = None,
    until: Annotated[str | None, typer.Option(help="End, ISO instant (default: now)")] = None,
    by: Annotated[str, typer.Option(help="day or week (calendar, UTC; weeks are ISO)")] = "week",
    output: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
) -> None:
    """Would have fired: per scenario, period and knowledge version, the hook calls, orders
    evaluated, cards shown and withheld by silent mode, accepted and overridden (by reason)."""
    from cds_service.persistence.firing import (
        as_csv,
        as_table,
        firing_report,
        firing_window,
    )

    output = _report_format(output)
    if by not in ("day", "week"):
        fail(f"--by {by!r}: use day or week")
    period: Literal["day", "week"] = "day" if by == "day" else "week"
    try:
        start, end = firing_window(
            _instant(since, "--since"), _instant(until, "--until"), period, datetime.now(UTC)
        )
    except ValueError as exc:
        fail(str(exc))
    try:
        report = firing_report(
            FeedbackStore(get_settings().database_url).engine, start, end, period
        )
    except SQLAlchemyError as exc:
        fail(f"cannot read the store ({type(exc).__name__}); is it migrated?")
    if output == "json":
        typer.echo(report.model_dump_json(indent=2))
    else:
        typer.echo(as_csv(report) if output == "csv" else as_table(report), nl=output != "csv")


@analytics_cli.command("gaps")
def analytics_gaps(
    output: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
    min_patients: Annotated[
        int | None,
        typer.Option(
            help="Show entries met for at least this many patients (default and least: "
            "CDS_GAP_MIN_PATIENTS)"
        ),
    ] = None,
) -> None:
    """Vocabulary gaps: imaging-looking order names and codes the classifier could not place, and
    words the fail-safe rule could not interpret, met for enough distinct patients; each with the
    YAML file and key that would close it."""
    from cds_service.persistence.gaps import gap_report, gaps_csv, gaps_table

    output = _report_format(output)
    settings = get_settings()
    threshold = min_patients if min_patients is not None else settings.gap_min_patients
    if threshold < settings.gap_min_patients:
        fail(f"--min-patients can only be raised: at least {settings.gap_min_patients}")
    try:
        report = gap_report(
            FeedbackStore(settings.database_url).engine,
            datetime.now(UTC),
            threshold,
            settings.gap_retention_days,
        )
    except SQLAlchemyError as exc:
        fail(f"cannot read the store ({type(exc).__name__}); is it migrated?")
    if output == "json":
        typer.echo(report.model_dump_json(indent=2, exclude_none=True))
    else:
        typer.echo(gaps_csv(report) if output == "csv" else gaps_table(report), nl=output != "csv")


@cli.command()
def discovery() -> None:
    """Print the discovery document."""
    services = hook_services(get_settings().hooks_dir)
    entries = [s.declaration.discovery_entry() for s in services.values()]
    typer.echo(json.dumps({"services": entries}, indent=2))


knowledge_cli = typer.Typer(help="Check and compare knowledge sets (hooks/).", no_args_is_help=True)
cli.add_typer(knowledge_cli, name="knowledge")


def hook_services(hooks_dir: Path) -> dict[str, HookService]:
    """The hook services of a knowledge folder; one line and exit 1 when it cannot be loaded."""
    if not hooks_dir.is_dir():
        fail(
            f"{hooks_dir}: no such folder"
            if not hooks_dir.exists()
            else f"{hooks_dir}: not a folder",
            1,
        )
    try:
        return load_services(hooks_dir)
    except KnowledgeError as exc:
        fail(f"{hooks_dir}: {exc}", 1)


@knowledge_cli.command("check")
def knowledge_check(
    hooks_dir: Annotated[Path | None, typer.Argument(help="Default: CDS_HOOKS_DIR")] = None,
) -> None:
    """Load and cross-check a knowledge set; print its version and content hash per service."""
    folder = hooks_dir or get_settings().hooks_dir
    for service_id, service in hook_services(folder).items():
        k = service.knowledge
        typer.echo(
            f"{service_id}: ok, knowledge {service.declaration.knowledge} {k.fingerprint}"
            f" ({len(k.findings)} findings, {len(k.study_by_code)} imaging codes)"
        )


def main() -> None:
    """The console entry point: every error is one line and a non-zero exit, never a traceback."""
    logging.basicConfig(level=logging.ERROR, format="cds-service: %(message)s")
    for entry in entry_points(group="cds_service.commands"):
        with contextlib.suppress(ImportError):  # declared, but the tooling is not installed
            entry.load()  # importing the module adds its commands to `cli`
    try:
        cli()
    except Exception as exc:  # typer handles usage errors itself; anything else ends here
        first = str(exc).splitlines()[0] if str(exc) else ""
        typer.echo(f"cds-service: {type(exc).__name__}: {first}", err=True)
        raise SystemExit(1) from None
