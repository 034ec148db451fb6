"""Prometheus metrics. Labels are bounded sets (service ids, scenarios, statuses, failure classes), never
request values, so no patient data and no unbounded cardinality.

With several uvicorn workers, set PROMETHEUS_MULTIPROC_DIR to an empty directory writable by all
workers before they start: prometheus-client then keeps the values in files there and `/metrics`
adds up every worker's."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import ParamSpec, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from cds_service.wire import Card, FeedbackItem

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "cds_requests_total",
    "HTTP requests answered, by CDS service, endpoint and status code.",
    ["service", "endpoint", "status"],
)
REQUEST_LATENCY = Histogram(
    "cds_request_duration_seconds",
    "Time to answer an HTTP request, by CDS service, endpoint and status code.",
    ["service", "endpoint", "status"],
    buckets=LATENCY_BUCKETS,
)
CARDS = Counter(
    "cds_cards_total",
    "Cards returned, by CDS service, scenario and indicator.",
    ["service", "scenario", "indicator"],
)
FHIR_FETCHES = Counter(
    "cds_fhir_fetch_total",
    "FHIR server queries made when the prefetch lacked data, by outcome ('ok' or a failure class).",
    ["outcome"],
)
FHIR_FETCH_ERRORS = Counter(
    "cds_fhir_fetch_errors_total",
    "FHIR server queries that failed, by failure class (timeout, http-500, invalid-json...).",
    ["cause"],
)
FHIR_FETCH_LATENCY = Histogram(
    "cds_fhir_fetch_duration_seconds",
    "Time of one FHIR server query, all pages included.",
    buckets=LATENCY_BUCKETS,
)
FETCH_LIMITS = Counter(
    "cds_fetch_limit_exceeded_total",
    "Responses abandoned at a cap, by source (fhir: FHIR server reads of a hook call; jwks: an "
    "issuer's key set) and cause (response-too-large, call-too-large, too-many-resources).",
    ["source", "cause"],
)
FEEDBACK = Counter(
    "cds_feedback_items_total",
    "Feedback items received, by CDS service and outcome (resubmissions included).",
    ["service", "outcome"],
)
FEEDBACK_STORED = Counter(
    "cds_feedback_items_stored_total",
    "Feedback items stored as new rows (resubmissions of a stored item are not).",
    ["service"],
)
FEEDBACK_FLAGGED = Counter(
    "cds_feedback_items_flagged_total",
    "Feedback items stored but flagged and kept out of the analytics (unknown card, another "
    "service's card, an override reason the card did not offer).",
    ["service", "flag"],
)
ANOMALIES = Counter(
    "cds_request_anomalies_total",
    "Hook calls that point at nothing: a patientId matching no resource's subject, or selections "
    "matching no draft order (answered with no card; logged without PHI).",
    ["kind"],
)
STORE_UP = Gauge(
    "cds_store_up",
    "1 when the last readiness check reached a migrated store, else 0 (lowest of live workers).",
    multiprocess_mode="livemin",
)
STORE_ERRORS = Counter(
    "cds_store_errors_total",
    "Failed writes or reads of the feedback/audit store, by operation.",
    ["operation"],
)
AUDIT_DROPPED = Counter(
    "cds_audit_rows_dropped_total",
    "Audit rows dropped by the batched audit writer: queue-full (the bound was reached), "
    "store-unavailable (the store refused them for too long) or shutdown (the last write failed).",
    ["reason"],
)
AUDIT_QUEUED = Gauge(
    "cds_audit_rows_queued",
    "Audit rows waiting for the batched writer (all live workers).",
    multiprocess_mode="livesum",
)

P = ParamSpec("P")
T = TypeVar("T")


def observe_fhir_fetch(fetch: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Count and time each call of a FHIR query function. A failure's class is its `cause` (the
    FhirFetchError convention) or its exception type; a call cancelled by the overall time budget
    counts as `cancelled`."""

    @functools.wraps(fetch)
    async def observed(*args: P.args, **kwargs: P.kwargs) -> T:
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await fetch(*args, **kwargs)
        except BaseException as exc:
            outcome = str(getattr(exc, "cause", "") or _failure_class(exc))
            FHIR_FETCH_ERRORS.labels(outcome).inc()
            raise
        finally:
            FHIR_FETCH_LATENCY.observe(time.perf_counter() - started)
            FHIR_FETCHES.labels(outcome).inc()

    return observed


def record_limit_exceeded(source: str, cause: str) -> None:
    FETCH_LIMITS.labels(source, cause).inc()


def _failure_class(exc: BaseException) -> str:
    return "cancelled" if isinstance(exc, asyncio.CancelledError) else type(exc).__name__


def record_cards(service_id: str, cards: list[Card], scenarios: dict[str, str]) -> None:
    """`scenarios` maps card uuid → scenario code."""
    for card in cards:
        CARDS.labels(service_id, scenarios.get(card.uuid, "unknown"), card.indicator).inc()


def record_feedback(
    service_id: str, items: list[FeedbackItem], stored: int, flags: Sequence[str | None] = ()
) -> None:
    for item in items:
        FEEDBACK.labels(service_id, item.outcome).inc()
    FEEDBACK_STORED.labels(service_id).inc(stored)
    for flag in flags:
        if flag is not None:
            FEEDBACK_FLAGGED.labels(service_id, flag).inc()


def exposition() -> tuple[bytes, str]:
    """The text exposition of every metric, of all workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
