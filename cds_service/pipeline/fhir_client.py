"""Reading prefetch queries from the EHR's FHIR server when the request did not carry them."""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from cds_service.errors import FhirFetchError
from cds_service.observability.metrics import observe_fhir_fetch

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json, application/json;q=0.9"


class FaultCounter:
    """FHIR fetch faults of whole prefetch keys, counted by cause and logged. (Each query's own
    outcome and latency go to Prometheus through `observe_fhir_fetch`.)"""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def record(self, cause: str, prefetch_key: str) -> None:
        self.counts[cause] += 1
        # The query URL names the patient: only the prefetch key and the class of fault are logged.
        log.warning("fhir_fetch_fault", extra={"cause": cause, "prefetch": prefetch_key})


fetch_faults = FaultCounter()


def _same_origin(a: str, b: str) -> bool:
    sa, sb = urlsplit(a), urlsplit(b)
    return (sa.scheme, sa.netloc) == (sb.scheme, sb.netloc)


@observe_fhir_fetch
async def fetch_query(
    client: httpx.AsyncClient,
    base_url: str,
    query: str,
    access_token: str | None,
    max_pages: int,
) -> list[dict[str, Any]]:
    """Run one FHIR query (a read or a search) and return its resources, following `Bundle.link[next]`
    for at most `max_pages` pages. Next links leaving the server's origin are not followed: the access
    token must never be sent elsewhere."""
    headers = {"Accept": FHIR_JSON}
    if access_token:
        headers["Authorization"] = f"Bearer {access_token}"
    url: str | None = urljoin(base_url.rstrip("/") + "/", query)
    resources: list[dict[str, Any]] = []
    pages = 0
    while url is not None:
        if pages == max_pages:
            raise FhirFetchError("too-many-pages")
        pages += 1
        body = await _get_json(client, url, headers)
        if body.get("resourceType") == "OperationOutcome":
            raise FhirFetchError("operation-outcome")
        if body.get("resourceType") != "Bundle":
            resources.append(body)
            return resources
        resources.extend(
            entry["resource"]
            for entry in body.get("entry") or []
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
        )
        url = _next_link(body)
        if url is not None and not _same_origin(url, base_url):
            raise FhirFetchError("next-link-other-origin")
    return resources


def _next_link(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None


async def _get_json(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    try:
        response = await client.get(url, headers=headers)
    except httpx.TimeoutException as exc:
        raise FhirFetchError("timeout") from exc
    except httpx.HTTPError as exc:
        raise FhirFetchError("connection-error") from exc
    if response.status_code != 200:
        raise FhirFetchError(f"http-{response.status_code}")
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FhirFetchError("invalid-json") from exc
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise FhirFetchError("not-fhir")
    return body
