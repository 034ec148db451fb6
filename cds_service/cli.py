"""Command line: `cds-service serve`, `evaluate REQUEST.json`, `replay fixtures/ --expect`,
`fixtures-table`, `discovery`, `migrate`, `analytics`."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import httpx
import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperGroup

from cds_service.config import get_settings
from cds_service.errors import CdsError, DataUnavailable, KnowledgeError
from cds_service.knowledge.registry import HookService, load_services
from cds_service.persistence.analytics import format_table, override_summary, window
from cds_service.persistence.store import FeedbackStore
from cds_service.pipeline.config import EvaluationConfig
from cds_service.pipeline.evaluate import evaluate
from cds_service.wire import HookRequest

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


def _now(value: str | None) -> datetime:
    parsed = _instant(value, "--now")
    if parsed is None:
        return datetime.now(UTC)
    if parsed.tzinfo is None:
        fail(f"--now {value!r} needs a time zone offset (e.g. {EXAMPLE_INSTANT})")
    return parsed


def _read_json(path: Path, folder_hint: str = "") -> Any:
    """A request or fixture file's JSON; one line naming the file and the cause when it is missing,
    a folder, unreadable, empty or not JSON."""
    from cds_tools.fixtures import FixtureError, read_json

    try:
        return read_json(path)
    except FixtureError as exc:
        hint = f" ({folder_hint})" if folder_hint and path.is_dir() else ""
        fail(f"{exc}{hint}")


def _folder(path: Path) -> Path:
    if not path.exists():
        fail(f"{path}: no such folder")
    if not path.is_dir():
        fail(f"{path}: is a file, not a folder")
    return path


def _choose_service(
    services: dict[str, HookService], service_id: str | None, hook: str
) -> HookService:
    """The service named, else the one answering the request's hook; one line with the valid
    choices when there is none, and when the named one answers another hook (as the API does)."""
    if service_id:
        chosen = services.get(service_id)
        if chosen is None:
            fail(f"no service {service_id!r}; the services are: {', '.join(services)}")
        if chosen.declaration.hook != hook:
            fail(
                f"service {service_id!r} answers the {chosen.declaration.hook!r} hook, not the"
                f" request's {hook!r}"
            )
        return chosen
    for candidate in services.values():
        if candidate.declaration.hook == hook:
            return candidate
    hooks = ", ".join(f"{s.declaration.hook} ({s.declaration.id})" for s in services.values())
    fail(f"no service for the hook {hook!r}; the hooks are: {hooks}")


@cli.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
) -> None:
    """Run the service under uvicorn."""
    import uvicorn

    uvicorn.run("cds_service.asgi:app", host=host, port=port, workers=workers, access_log=False)


@cli.command("evaluate")
def evaluate_command(
    request_file: Annotated[Path, typer.Argument(help="A CDS Hooks request or a fixture file")],
    service: Annotated[
        str | None, typer.Option(help="Service id (default: the fixture's, else by the hook)")
    ] = None,
    now: Annotated[str | None, typer.Option(help="Evaluate as of this ISO instant")] = None,
    pretty: Annotated[bool, typer.Option("--pretty", help="Print a readable table")] = False,
) -> None:
    """Evaluate a CDS Hooks request file, or a scenario fixture, offline and print the response."""
    from cds_tools.fixtures import render
    from cds_tools.replay import response_table

    when = _now(now)
    payload: Any = _read_json(request_file, "evaluate takes one file; replay takes a folder")
    if isinstance(payload, dict) and "request" in payload:  # a fixture wraps its request
        service = service or payload.get("service")
        payload = payload["request"]
    try:
        request = HookRequest.model_validate(render(payload, when))
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "request"
        fail(f"{request_file}: not a CDS Hooks request: {where}: {first['msg']}")
    settings = get_settings()
    chosen = _choose_service(_load(settings.hooks_dir), service, request.hook)

    async def run() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=settings.fhir_timeout_s) as client:
            result = await evaluate(
                request, chosen, client, EvaluationConfig.from_settings(settings), when
            )
        return result.response.to_json_dict()

    try:
        response = asyncio.run(run())
    except DataUnavailable as exc:
        fail(f"cannot evaluate: data missing from the prefetch and the FHIR server: {exc}")
    except CdsError as exc:
        fail(f"cannot evaluate: {exc.error}: {exc.message}")
    if pretty:
        typer.echo(response_table(response))
    else:
        typer.echo(json.dumps(response, indent=2, ensure_ascii=False))


@cli.command("render")
def render_command(
    fixture_file: Annotated[Path, typer.Argument(help="A fixture (or request) file")],
    now: Annotated[str | None, typer.Option(help="Render as of this ISO instant")] = None,
) -> None:
    """Print a fixture's CDS Hooks request with every {{now...}} token rendered: ready to POST."""
    from cds_tools.fixtures import render

    when = _now(now)
    payload: Any = _read_json(fixture_file, "render takes one fixture file")
    request = payload.get("request", payload) if isinstance(payload, dict) else payload
    if not isinstance(request, dict):
        fail(f"{fixture_file}: not a fixture or a CDS Hooks request (a JSON object)")
    typer.echo(json.dumps(render(request, when), indent=2, ensure_ascii=False))


@cli.command("replay")
def replay_command(
    paths: Annotated[list[Path], typer.Argument(help="Fixture files or folders of fixtures")],
    expect: Annotated[
        bool,
        typer.Option("--expect", help="Exit 1 when any outcome differs from the fixture's"),
    ] = False,
    url: Annotated[
        str | None,
        typer.Option(help="Base URL of a running service (default: the app, in-process)"),
    ] = None,
    now: Annotated[
        str | None, typer.Option(help="Render and evaluate as of this ISO instant (in-process)")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per request with --url")] = 10.0,
) -> None:
    """Run every fixture's request against the service and compare with its expected outcome:
    scenario, rating, indicator, draft order, suggestion action types and system actions."""
    from cds_tools.fixtures import FixtureError, fixture_paths, load_fixture
    from cds_tools.replay import (
        FixtureResult,
        ServiceUnreachable,
        check_reachable,
        in_process_client,
        replay,
        results_table,
        service_base_url,
    )

    if url and now:
        fail("--now applies in-process only: a running service uses its own clock")
    when = _now(now)
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            fail(f"{path}: no such file or folder")
        found = fixture_paths(path) if path.is_dir() else [path]
        if not found:
            fail(f"{path}: no fixture files (*.json) in this folder")
        files += found
    named: dict[Path, str] = {}
    for file in files:  # every file is a readable fixture before any is replayed
        try:
            named[file] = load_fixture(file, when)["service"]
        except FixtureError as exc:
            fail(str(exc))

    def check_services(offered: Sequence[str], where: str) -> None:
        for file, service_id in named.items():
            if service_id not in offered:
                fail(
                    f"{file}: no service {service_id!r} {where}; the services are:"
                    f" {', '.join(offered)}"
                )

    async def run() -> list[FixtureResult]:
        if url:
            base = service_base_url(url)
            async with httpx.AsyncClient(base_url=base, timeout=timeout) as client:
                check_services(await check_reachable(client), f"at {base}")
                return await replay(client, files, when)
        check_services(list(_load(get_settings().hooks_dir)), "here")
        async with in_process_client(get_settings(), when) as client:
            return await replay(client, files, when)

    try:
        results = asyncio.run(run())
    except ServiceUnreachable as exc:
        fail(str(exc))
    typer.echo(results_table(results))
    if expect and not all(r.passed for r in results):
        raise typer.Exit(1)


@cli.command("fixtures-table")
def fixtures_table_command(
    folder: Annotated[Path, typer.Argument(help="The fixtures folder")] = Path("fixtures"),
    write: Annotated[bool, typer.Option("--write", help="Write FOLDER/README.md")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when FOLDER/README.md is out of date")
    ] = False,
) -> None:
    """The fixtures as a table a clinician can read (fixtures/README.md)."""
    from cds_tools.fixture_docs import fixtures_readme

    try:
        text = asyncio.run(fixtures_readme(_folder(folder), get_settings()))
    except ValueError as exc:
        fail(str(exc))
    readme = folder / "README.md"
    if check:
        current = readme.read_text(encoding="utf-8") if readme.exists() else ""
        if current != text:
            fail(f"{readme} is out of date: run cds-service fixtures-table --write", 1)
        typer.echo(f"{readme} is up to date")
    elif write:
        readme.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {readme}")
    else:
        typer.echo(text, nl=False)


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
    services = _load(get_settings().hooks_dir)
    entries = [s.declaration.discovery_entry() for s in services.values()]
    typer.echo(json.dumps({"services": entries}, indent=2))


knowledge_cli = typer.Typer(help="Check and compare knowledge sets (hooks/).", no_args_is_help=True)
cli.add_typer(knowledge_cli, name="knowledge")


def _load(hooks_dir: Path) -> dict[str, HookService]:
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
    for service_id, service in _load(folder).items():
        k = service.knowledge
        typer.echo(
            f"{service_id}: ok, knowledge {service.declaration.knowledge} {k.fingerprint}"
            f" ({len(k.findings)} findings, {len(k.study_by_code)} imaging codes)"
        )


@knowledge_cli.command("diff")
def knowledge_diff(
    old: Annotated[Path, typer.Argument(help="Current hooks/")],
    new: Annotated[Path, typer.Argument(help="Proposed hooks/")],
    fixtures: Annotated[Path, typer.Option(help="The fixtures folder")] = Path("fixtures"),
    now: Annotated[str | None, typer.Option(help="Evaluate as of this ISO instant")] = None,
) -> None:
    """Replay the fixtures under both knowledge sets and list every outcome that changes: what an
    informaticist reviews before a rule change goes live. Exit 1 when something changes."""
    from cds_tools.fixtures import fixture_paths
    from cds_tools.replay import in_process_client, outcome_line, replay

    when = _now(now)
    _load(old), _load(new)  # a broken set is one line, not a traceback
    files = fixture_paths(_folder(fixtures))
    if not files:
        fail(f"{fixtures}: no fixture files (*.json) in this folder")

    async def run(hooks: Path) -> dict[str, str]:
        settings = get_settings().model_copy(update={"hooks_dir": hooks})
        async with in_process_client(settings, when) as client:
            return {r.name: outcome_line(r) for r in await replay(client, files, when)}

    before, after = asyncio.run(run(old)), asyncio.run(run(new))
    changed = [name for name in before if before[name] != after.get(name)]
    for name in changed:
        typer.echo(f"{name}\n  before: {before[name]}\n  after:  {after.get(name)}")
    typer.echo(f"{len(files)} fixtures: {len(changed)} outcome(s) change")
    if changed:
        raise typer.Exit(1)


def main() -> None:
    """The console entry point: every error is one line and a non-zero exit, never a traceback."""
    logging.basicConfig(level=logging.ERROR, format="cds-service: %(message)s")
    try:
        cli()
    except Exception as exc:  # typer handles usage errors itself; anything else ends here
        first = str(exc).splitlines()[0] if str(exc) else ""
        typer.echo(f"cds-service: {type(exc).__name__}: {first}", err=True)
        raise SystemExit(1) from None
