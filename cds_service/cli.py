"""Command line: `cds-service serve`, `cds-service evaluate REQUEST.json`, `cds-service discovery`,
`cds-service migrate`, `cds-service analytics`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from sqlalchemy.exc import SQLAlchemyError

from cds_service.analytics import format_table, override_summary, window
from cds_service.config import get_settings
from cds_service.errors import CdsError
from cds_service.pipeline import evaluate
from cds_service.registry import load_services
from cds_service.resolve import DataUnavailable
from cds_service.store import FeedbackStore
from cds_service.wire import HookRequest

cli = typer.Typer(help="PDPH imaging CDS Hooks service.", no_args_is_help=True)


def _now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(value)
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

    uvicorn.run("cds_service.app:app", host=host, port=port, workers=workers, access_log=False)


@cli.command("evaluate")
def evaluate_command(
    request_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    service: Annotated[str | None, typer.Option(help="Service id (default: by the hook)")] = None,
    now: Annotated[str | None, typer.Option(help="Evaluate as of this ISO instant")] = None,
) -> None:
    """Evaluate a CDS Hooks request file offline and print the response JSON."""
    payload: Any = json.loads(request_file.read_text(encoding="utf-8"))
    payload = payload.get("request", payload)  # a fixture file wraps its request
    request = HookRequest.model_validate(payload)
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
            result = await evaluate(request, chosen, client, settings, _now(now))
        return result.response.to_json_dict()

    try:
        response = asyncio.run(run())
    except (CdsError, DataUnavailable) as exc:
        typer.echo(json.dumps({"error": str(exc)}), err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(response, indent=2, ensure_ascii=False))


@cli.command()
def migrate() -> None:
    """Bring the store's schema (DATABASE_URL) to the latest Alembic revision."""
    FeedbackStore(get_settings().database_url).migrate()
    typer.echo("store schema is current")


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


def _instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


@cli.command()
def discovery() -> None:
    """Print the discovery document."""
    services = load_services(get_settings().hooks_dir)
    entries = [s.declaration.discovery_entry() for s in services.values()]
    typer.echo(json.dumps({"services": entries}, indent=2))


def main() -> None:
    cli()
