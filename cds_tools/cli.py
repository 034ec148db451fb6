"""The tooling's commands on the `cds-service` command line: `evaluate` and `render` a request or
fixture file, `replay` fixtures against the service, `fixtures-table`, `knowledge diff`. Importing
this module adds them to `cds_service.cli.cli`; the runtime's `main` imports it through the
entry-point group `cds_service.commands`, so the runtime package never names the tooling."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import ValidationError

from cds_service.cli import cli, fail, hook_services, knowledge_cli, now_option
from cds_service.config import get_settings
from cds_service.errors import CdsError, DataUnavailable
from cds_service.knowledge.registry import HookService
from cds_service.pipeline.config import EvaluationConfig
from cds_service.pipeline.evaluate import evaluate
from cds_service.wire import HookRequest
from cds_tools.fixture_docs import fixtures_readme
from cds_tools.fixtures import FixtureError, fixture_paths, load_fixture, read_json, render
from cds_tools.replay import (
    FixtureResult,
    ServiceUnreachable,
    check_reachable,
    in_process_client,
    load_case,
    outcome_line,
    replay,
    replay_fixture,
    response_table,
    results_table,
    service_base_url,
)

__all__ = ["cli"]


def _read_json(path: Path, folder_hint: str = "") -> Any:
    """A request or fixture file's JSON; one line naming the file and the cause when it is missing,
    a folder, unreadable, empty or not JSON."""
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
    when = now_option(now)
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
    chosen = _choose_service(hook_services(settings.hooks_dir), service, request.hook)

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
    when = now_option(now)
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

    if url and now:
        fail("--now applies in-process only: a running service uses its own clock")
    when = now_option(now)
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
        check_services(list(hook_services(get_settings().hooks_dir)), "here")
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


@knowledge_cli.command("diff")
def knowledge_diff(
    old: Annotated[Path, typer.Argument(help="Current hooks/")],
    new: Annotated[Path, typer.Argument(help="Proposed hooks/")],
    fixtures: Annotated[
        Path,
        typer.Option(
            "--fixtures",
            "--requests",
            help="A folder of fixtures, or of CDS Hooks requests as an EHR sent them, or both",
        ),
    ] = Path("fixtures"),
    now: Annotated[str | None, typer.Option(help="Evaluate as of this ISO instant")] = None,
) -> None:
    """Replay a folder of cases (fixtures, or requests an integrator exported) under both knowledge
    sets and list every outcome that changes: what an informaticist reviews before a rule change
    goes live. Exit 1 when something changes; a note when nothing in the folder is touched by
    the change."""
    when = now_option(now)
    services = hook_services(old)
    hook_services(new)  # a broken set is one line, not a traceback
    files = fixture_paths(_folder(fixtures))
    if not files:
        fail(f"{fixtures}: no fixture or request files (*.json) in this folder")
    hooks: dict[str, str] = {}
    for service_id, service in services.items():
        hooks.setdefault(service.declaration.hook, service_id)
    try:
        cases = [load_case(file, when, hooks) for file in files]
    except FixtureError as exc:
        fail(str(exc))

    async def run(hooks_dir: Path) -> dict[str, str]:
        settings = get_settings().model_copy(update={"hooks_dir": hooks_dir})
        async with in_process_client(settings, when) as client:
            return {
                case["name"]: outcome_line(await replay_fixture(client, case)) for case in cases
            }

    before, after = asyncio.run(run(old)), asyncio.run(run(new))
    changed = [name for name in before if before[name] != after.get(name)]
    for name in changed:
        typer.echo(f"{name}\n  before: {before[name]}\n  after:  {after.get(name)}")
    typer.echo(f"{len(cases)} cases: {len(changed)} outcome(s) change")
    if changed:
        raise typer.Exit(1)
    differing = changed_files(old, new)
    if differing:
        typer.echo(
            f"Note: {new} differs from {old} in {', '.join(differing)}, but no case in "
            f"{fixtures} is touched by the change: add a fixture or an exported request that it "
            "should change, and run the diff again (docs/go-live.md, Close a gap)."
        )


def changed_files(old: Path, new: Path) -> list[str]:
    """The knowledge files (*.yaml, at any depth) that differ between two hooks/ folders."""

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.yaml"))}

    before, after = files(old), files(new)
    return sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )
