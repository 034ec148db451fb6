"""Reading prefetch queries from the EHR's FHIR server when the request did not carry them.

The server's answers are input like any other: each response is streamed and counted against a
per-response byte cap, all responses of one hook call against a per-call byte cap and a per-call
resource cap (`FetchLimits`), and abandoned the moment one is passed (cds_service/bounded_read.py)."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from cds_service.bounded_read import (
    ACCEPT_ENCODING,
    PieceCheck,
    is_json_media_type,
    parse_json,
    read_body,
)
from cds_service.errors import FhirFetchError, ResponseRefused
from cds_service.fhir.bundle import entry_resources
from cds_service.observability.metrics import observe_fhir_fetch, record_limit_exceeded

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json, application/json;q=0.9"
MIB = 1024 * 1024
CAP_CAUSES = frozenset({"response-too-large", "call-too-large", "too-many-resources"})
# Every resource of a JSON answer, a Bundle's own and contained ones included, has this key; a
# string value holding it is escaped (\"resourceType\") and does not match.
_RESOURCE_KEY = b'"resourceType"'
RELEASE_SLICE = 1000


@dataclass(frozen=True)
class FetchLimits:
    """What one hook call may read from a FHIR server (CDS_FHIR_MAX_*). The benchmark's large
    patient (about 1,900 resources) is 1.4 MB in all."""

    response_bytes: int = 16 * MIB
    call_bytes: int = 32 * MIB
    call_resources: int = 20_000


class FhirClient(httpx.AsyncClient):
    """The HTTP client the service reads FHIR servers with, carrying what a call may read."""

    def __init__(self, *, fetch_limits: FetchLimits | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fetch_limits = fetch_limits or FetchLimits()


def fetch_limits(client: httpx.AsyncClient) -> FetchLimits:
    """The caps of `client` (the defaults for a plain httpx client, as tools and tests pass)."""
    return client.fetch_limits if isinstance(client, FhirClient) else FetchLimits()


class CallAllowance:
    """What is left of one hook call's FetchLimits, shared by all its queries and pages."""

    def __init__(self, limits: FetchLimits) -> None:
        self.limits = limits
        self.bytes_left = limits.call_bytes
        self.resources_left = limits.call_resources

    def response_check(self) -> PieceCheck:
        """A check for the decoded pieces of one response: counts its bytes and its resources
        (the `"resourceType"` keys, found across piece boundaries) against what is left."""
        tail = b""
        overlap = len(_RESOURCE_KEY) - 1

        def check(piece: bytes) -> None:
            nonlocal tail
            self.bytes_left -= len(piece)
            if self.bytes_left < 0:
                raise ResponseRefused("call-too-large")
            window = tail + piece
            self.resources_left -= window.count(_RESOURCE_KEY)
            if self.resources_left < 0:
                raise ResponseRefused("too-many-resources")
            tail = window[-overlap:]

        return check


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
    allowance: CallAllowance | None = None,
) -> list[dict[str, Any]]:
    """Run one FHIR query (a read or a search) and return its resources, following `Bundle.link[next]`
    for at most `max_pages` pages. Next links leaving the server's origin are not followed: the access
    token must never be sent elsewhere. `allowance` is the call's (shared by its queries); without
    one, the query has the client's caps to itself."""
    if allowance is None:
        allowance = CallAllowance(fetch_limits(client))
    headers = {"Accept": FHIR_JSON, "Accept-Encoding": ACCEPT_ENCODING}
    if access_token:
        headers["Authorization"] = f"Bearer {access_token}"
    url: str | None = urljoin(base_url.rstrip("/") + "/", query)
    resources: list[dict[str, Any]] = []
    seen: set[str] = set()
    try:
        while url is not None:
            if len(seen) == max_pages:
                raise FhirFetchError("too-many-pages")
            seen.add(url)
            url = _take_page(await _get_json(client, url, headers, allowance), resources)
            if url is not None and not _same_origin(url, base_url):
                raise FhirFetchError("next-link-other-origin")
            if url in seen:
                raise FhirFetchError("next-link-loop")
    except FhirFetchError:
        # A refused query's pages are freed now, not when the error's traceback (which holds this
        # frame) goes: a record refused at the resource cap is tens of megabytes of objects.
        await _release(resources)
        raise
    except BaseException:
        resources.clear()  # cancelled (the time budget): no awaiting any more
        raise
    return resources


async def _release(resources: list[dict[str, Any]]) -> None:
    """Free resources a slice at a time: 20,000 freed at once hold the event loop for ~25 ms."""
    while resources:
        del resources[-RELEASE_SLICE:]
        await asyncio.sleep(0)


def _take_page(body: dict[str, Any], resources: list[dict[str, Any]]) -> str | None:
    """Adds the resources of one answer to `resources`; returns the next page's URL, if any."""
    if body.get("resourceType") == "OperationOutcome":
        raise FhirFetchError("operation-outcome")
    if body.get("resourceType") != "Bundle":
        resources.append(body)
        return None
    resources.extend(entry_resources(body) or [])
    return _next_link(body)


def _next_link(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None


async def _get_json(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], allowance: CallAllowance
) -> dict[str, Any]:
    """One response, streamed within the caps: refused before its body is read when its status or
    type is wrong or it announces more bytes than allowed, abandoned mid-body at a cap (leaving the
    `async with` closes the connection)."""
    try:
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                raise FhirFetchError(f"http-{response.status_code}")
            if not is_json_media_type(response.headers.get("content-type")):
                raise FhirFetchError("wrong-content-type")
            raw = await read_body(
                response, allowance.limits.response_bytes, allowance.response_check()
            )
        body = await parse_json(raw)
    except ResponseRefused as exc:
        if exc.cause in CAP_CAUSES:
            record_limit_exceeded("fhir", exc.cause)
        raise FhirFetchError(exc.cause) from None
    except httpx.TimeoutException as exc:
        raise FhirFetchError("timeout") from exc
    except httpx.HTTPError as exc:
        raise FhirFetchError("connection-error") from exc
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise FhirFetchError("not-fhir")
    return body
