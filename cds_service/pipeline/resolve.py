"""Data resolution: the prefetch the EHR sent, else the same queries against its FHIR server.

CDS Hooks 2.0 rules applied: a prefetch key present with `null` means "no data"; a missing key, or one
holding an OperationOutcome (the EHR could not run the query), is fetched from `fhirServer` with
`fhirAuthorization.access_token` as Bearer (or without a token when none is given)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from cds_service.errors import DataUnavailable, FhirFetchError
from cds_service.fhir.bundle import entry_resources
from cds_service.pipeline.fhir_client import (
    CallAllowance,
    fetch_faults,
    fetch_limits,
    fetch_query,
)
from cds_service.wire import HookRequest

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")


@dataclass
class ResolvedData:
    """Raw resource dictionaries per prefetch key, and which keys were fetched from the server."""

    resources: dict[str, list[dict[str, Any]]]
    fetched: list[str] = field(default_factory=list)


_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


def render_template(template: str, request: HookRequest) -> str | None:
    """Fill the CDS Hooks prefetch tokens (`{{context.x}}` and the `{{userXId}}` family); None when a
    token has no value in this request, so the query cannot be run."""
    context = request.context.model_dump()

    def value(match: re.Match[str]) -> str:
        path = match.group(1)
        found: object = None
        if path.startswith("context."):
            found = context.get(path.removeprefix("context."))
        elif path in _USER_TOKENS:
            user = context.get("userId")
            prefix = f"{_USER_TOKENS[path]}/"
            if isinstance(user, str) and user.startswith(prefix):
                found = user.removeprefix(prefix)
        if not isinstance(found, str) or not found:
            raise KeyError(path)
        return found

    try:
        return _TOKEN.sub(value, template)
    except KeyError:
        return None


def prefetch_resources(value: Any) -> list[dict[str, Any]] | None:
    """The resources of one prefetch value, or None when the value does not satisfy the template."""
    if value is None:
        return []
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return None
    if value["resourceType"] == "OperationOutcome":
        return None
    if value["resourceType"] != "Bundle":
        return [value]
    return entry_resources(value)


FhirGuard = Callable[[str], None]


async def resolve(
    request: HookRequest,
    templates: dict[str, str],
    client: httpx.AsyncClient,
    timeout_s: float,
    max_pages: int,
    optional: frozenset[str] = frozenset(),
    fhir_guard: FhirGuard | None = None,
) -> ResolvedData:
    """Resources for every prefetch template, from the prefetch or the FHIR server, within `timeout_s`
    in total (reading, decoding and parsing) and the client's FetchLimits. Raises DataUnavailable
    when a required template cannot be satisfied; an `optional` one (its declaration says
    `on_failure: omit`) is then left out, logged and counted."""
    prefetch = request.prefetch or {}
    resources: dict[str, list[dict[str, Any]]] = {}
    to_fetch: dict[str, str] = {}
    missing: dict[str, str] = {}
    for key, template in templates.items():
        found = prefetch_resources(prefetch[key]) if key in prefetch else None
        if found is not None:
            resources[key] = found
            continue
        query = render_template(template, request)
        if query is None:
            missing[key] = "template-token-unavailable"
        elif request.fhirServer is None:
            missing[key] = "no-prefetch-and-no-fhirServer"
        else:
            to_fetch[key] = query
    missing = _required(missing, optional)
    if missing:
        raise DataUnavailable(missing)
    if not to_fetch:
        return ResolvedData(resources)

    assert request.fhirServer is not None
    if fhir_guard is not None:
        fhir_guard(request.fhirServer)  # raises before any request or token leaves
    token = request.fhirAuthorization.access_token if request.fhirAuthorization else None
    keys = list(to_fetch)
    # One allowance for the whole call: its queries' bytes and resources count together.
    allowance = CallAllowance(fetch_limits(client))
    tasks = {
        key: asyncio.ensure_future(
            fetch_query(client, request.fhirServer, to_fetch[key], token, max_pages, allowance)
        )
        for key in keys
    }
    try:
        done, _ = await asyncio.wait(tasks.values(), timeout=timeout_s)
    finally:
        for task in tasks.values():  # past the budget (or the call itself cancelled): stop reading
            task.cancel()
    # What arrived within the budget is used; only the queries still running are timeouts.
    for key, task in tasks.items():
        error = task.exception() if task in done else None
        if task not in done:
            missing[key] = "timeout"
        elif isinstance(error, FhirFetchError):
            missing[key] = error.cause
        elif error is not None:
            log.warning("fhir_fetch_unexpected_error", extra={"error_class": type(error).__name__})
            missing[key] = "unexpected-error"
        else:
            resources[key] = task.result()
            continue
        fetch_faults.record(missing[key], key)
    missing = _required(missing, optional)
    if missing:
        raise DataUnavailable(missing)
    return ResolvedData(resources, fetched=[k for k in keys if k in resources])


def _required(missing: dict[str, str], optional: frozenset[str]) -> dict[str, str]:
    for key in missing.keys() & optional:
        log.warning("optional_prefetch_omitted", extra={"prefetch": key, "cause": missing[key]})
    return {key: cause for key, cause in missing.items() if key not in optional}
