"""Command line: `cds-service serve`, `evaluate REQUEST.json`, `replay fixtures/ --expect`,
`fixtures-table`, `discovery`, `migrate`, `analytics`."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from cds_service.config import get_settings
from cds_service.errors import CdsError, DataUnavailable, KnowledgeError
from cds_service.knowledge.registry import HookService, load_services
from cds_service.persistence.analytics import format_table, override_summary, window
from cds_service.persistence.store import FeedbackStore
from cds_service.pipeline.config import EvaluationConfig
from cds_service.pipeline.evaluate import evaluate
from cds_service.wire import HookRequest

cli = typer.Typer(help="PDPH imaging CDS Hooks service.", no_args_is_help=True)


def _instant(value: str | None) -> datetime | None:
    """An ISO 8601 option value; a usage error, not a traceback, when it is not one."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO 8601 instant: {value!r}") from exc


def _now(value: str | None) -> datetime:
    parsed = _instant(value)
    if parsed is None:
        return datetime.now(UTC)
    if parsed.tzinfo is None:
        raise typer.BadParameter("--now needs a time zone offset, e.g. 2026-11-24T12:00:00Z")
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


@cli.command("evaluate")
def evaluate_command(
    request_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
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
    try:
        payload: Any = json.loads(request_file.read_text(encoding="utf-8"))
        if isinstance(payload, dict) and "request" in payload:  # a fixture wraps its request
            service = service or payload.get("service")
            payload = payload["request"]
        request = HookRequest.model_validate(render(payload, when))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        typer.echo(f"{request_file}: not a JSON file ({exc})", err=True)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "request"
        typer.echo(f"{request_file}: not a CDS Hooks request: {where}: {first['msg']}", err=True)
        raise typer.Exit(2) from None
    settings = get_settings()
    services = load_services(settings.hooks_dir)
    chosen = (
        services.get(service)
        if service
        else next((s for s in services.values() if s.declaration.hook == request.hook), None)
    )
    if chosen is None:
        raise typer.BadParameter(f"no service for {service or request.hook!r}")

    async def run() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=settings.fhir_timeout_s) as client:
            result = await evaluate(
                request, chosen, client, EvaluationConfig.from_settings(settings), when
            )
        return result.response.to_json_dict()

    try:
        response = asyncio.run(run())
    except DataUnavailable as exc:
        typer.echo(
            f"cannot evaluate: data missing from the prefetch and the FHIR server: {exc}", err=True
        )
        raise typer.Exit(2) from None
    except CdsError as exc:
        typer.echo(f"cannot evaluate: {exc.error}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    if pretty:
        typer.echo(response_table(response))
    else:
        typer.echo(json.dumps(response, indent=2, ensure_ascii=False))


@cli.command("render")
def render_command(
    fixture_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    now: Annotated[str | None, typer.Option(help="Render as of this ISO instant")] = None,
) -> None:
    """Print a fixture's CDS Hooks request with every {{now...}} token rendered: ready to POST."""
    from cds_tools.fixtures import render

    try:
        payload: Any = json.loads(fixture_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        typer.echo(f"{fixture_file}: not a JSON file ({exc})", err=True)
        raise typer.Exit(2) from None
    request = payload.get("request", payload) if isinstance(payload, dict) else payload
    typer.echo(json.dumps(render(request, _now(now)), indent=2, ensure_ascii=False))


@cli.command("replay")
def replay_command(
    paths: Annotated[
        list[Path], typer.Argument(exists=True, help="Fixture files or folders of fixtures")
    ],
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
    from cds_tools.fixtures import fixture_paths
    from cds_tools.replay import (
        FixtureResult,
        in_process_client,
        replay,
        results_table,
        service_base_url,
    )

    if url and now:
        raise typer.BadParameter("--now applies in-process only: a running service uses its clock")
    files = [f for p in paths for f in (fixture_paths(p) if p.is_dir() else [p])]
    if not files:
        typer.echo("no fixture files found", err=True)
        raise typer.Exit(2)
    when = _now(now)

    async def run() -> list[FixtureResult]:
        if url:
            async with httpx.AsyncClient(base_url=service_base_url(url), timeout=timeout) as client:
                return await replay(client, files, when)
        async with in_process_client(get_settings(), when) as client:
            return await replay(client, files, when)

    results = asyncio.run(run())
    typer.echo(results_table(results))
    if expect and not all(r.passed for r in results):
        raise typer.Exit(1)


@cli.command("fixtures-table")
def fixtures_table_command(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False)] = Path("fixtures"),
    write: Annotated[bool, typer.Option("--write", help="Write FOLDER/README.md")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when FOLDER/README.md is out of date")
    ] = False,
) -> None:
    """The fixtures as a table a clinician can read (fixtures/README.md)."""
    from cds_tools.fixture_docs import fixtures_readme

    try:
        text = asyncio.run(fixtures_readme(folder, get_settings()))
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    readme = folder / "README.md"
    if check:
        current = readme.read_text(encoding="utf-8") if readme.exists() else ""
        if current != text:
            typer.echo(f"{readme} is out of date: run cds-service fixtures-table --write", err=True)
            raise typer.Exit(1)
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


@cli.command()
def analytics(
    since: Annotated[
        str | None, typer.Option(help="Start, ISO instant (default: until - 30 days)")
    ] = None,
    until: Annotated[str | None, typer.Option(help="End, ISO instant (default: now)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """Print cards shown, accepted and overridden per scenario and override reason."""
    try:
        start, end = window(_instant(since), _instant(until), datetime.now(UTC))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        summary = override_summary(FeedbackStore(get_settings().database_url).engine, start, end)
    except SQLAlchemyError as exc:
        typer.echo(f"cannot read the store ({type(exc).__name__}); is it migrated?", err=True)
        raise typer.Exit(2) from exc
    typer.echo(summary.model_dump_json(indent=2) if as_json else format_table(summary))


@cli.command()
def discovery() -> None:
    """Print the discovery document."""
    services = load_services(get_settings().hooks_dir)
    entries = [s.declaration.discovery_entry() for s in services.values()]
    typer.echo(json.dumps({"services": entries}, indent=2))


knowledge_cli = typer.Typer(help="Check and compare knowledge sets (hooks/).", no_args_is_help=True)
cli.add_typer(knowledge_cli, name="knowledge")


def _load(hooks_dir: Path) -> dict[str, HookService]:
    try:
        return load_services(hooks_dir)
    except KnowledgeError as exc:
        typer.echo(f"{hooks_dir}: {exc}", err=True)
        raise typer.Exit(1) from None


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
    old: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Current hooks/")],
    new: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Proposed hooks/")],
    fixtures: Annotated[Path, typer.Option(exists=True, file_okay=False)] = Path("fixtures"),
    now: Annotated[str | None, typer.Option(help="Evaluate as of this ISO instant")] = None,
) -> None:
    """Replay the fixtures under both knowledge sets and list every outcome that changes: what an
    informaticist reviews before a rule change goes live. Exit 1 when something changes."""
    from cds_tools.fixtures import fixture_paths
    from cds_tools.replay import in_process_client, outcome_line, replay

    when = _now(now)
    files = fixture_paths(fixtures)
    _load(old), _load(new)  # a broken set is one line, not a traceback

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
