"""The access log: one JSON line per HTTP request (endpoint, CDS service, hookInstance, scenarios,
status, duration) and the request metrics, from one pure ASGI middleware. It replaces uvicorn's
access log (silenced in `logs.configure_logging`), whose lines would carry raw paths and client
addresses. Nothing from the request body is logged except the hookInstance."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from contextvars import ContextVar
from dataclasses import dataclass, field

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_service.observability.logs import hook_instance
from cds_service.observability.metrics import REQUEST_LATENCY, REQUESTS

log = logging.getLogger("cds_service.observability.access")

# Probes and scrapes arrive every few seconds: their lines are debug-level.
QUIET_ENDPOINTS = frozenset({"healthz", "readyz", "metrics"})
# What logging records when it does not look the caller up (logging._srcfile unset).
_NO_FILE, _NO_FUNCTION = "(unknown file)", "(unknown function)"


@dataclass
class RequestFacts:
    """What a route learnt about the request, for its access line. Routes fill the object in place,
    so the middleware sees it whatever context copies happen in between."""

    hook_instance: str | None = None
    scenarios: list[str] = field(default_factory=list)
    cards: int | None = None
    feedback_items: int | None = None


_facts: ContextVar[RequestFacts | None] = ContextVar("request_facts", default=None)


def request_facts() -> RequestFacts:
    """The facts of the request being answered; a throwaway object outside a request (CLI, tests)."""
    return _facts.get() or RequestFacts()


def classify(path: str, services: Collection[str]) -> tuple[str, str]:
    """(endpoint, service id) of a path. Unknown service ids become `unknown`, so neither metrics nor
    logs repeat arbitrary client input."""
    parts = path.strip("/").split("/")
    if parts[0] == "cds-services":
        if len(parts) == 1:
            return "discovery", ""
        service = parts[1] if parts[1] in services else "unknown"
        if len(parts) == 2:
            return "hook", service
        if len(parts) == 3 and parts[2] == "feedback":
            return "feedback", service
        return "other", ""
    if path in ("/healthz", "/readyz", "/metrics"):
        return path.strip("/"), ""
    if path == "/analytics/overrides":
        return "analytics", ""
    return "other", ""


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, services: Collection[str]) -> None:
        self.app = app
        self.services = frozenset(services)
        # The request metrics' children by (service, endpoint, status): prometheus-client's
        # labels() checks and joins its labels on every call. Bounded: services (and `unknown`)
        # times endpoints times the statuses the app answers with.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        facts = RequestFacts()
        token = _facts.set(facts)
        instance_token = hook_instance.set(None)  # the route sets it for its own log lines
        started = time.perf_counter()
        status = 500
        answered: float | None = None

        async def send_and_watch(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = time.perf_counter()  # the last byte: what the EHR waited for

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            duration = (answered or time.perf_counter()) - started
            self._record(scope, status, duration, facts)
            hook_instance.reset(instance_token)
            _facts.reset(token)

    def _record(self, scope: Scope, status: int, duration: float, facts: RequestFacts) -> None:
        endpoint, service = classify(str(scope.get("path", "")), self.services)
        children = self._children.get((service, endpoint, status))
        if children is None:
            labels = (service, endpoint, str(status))
            children = REQUESTS.labels(*labels), REQUEST_LATENCY.labels(*labels)
            self._children[service, endpoint, status] = children
        children[0].inc()
        children[1].observe(duration)
        line: dict[str, object] = {
            "method": scope.get("method", ""),
            "endpoint": endpoint,
            "status": status,
            "duration_ms": round(duration * 1000, 2),
        }
        if service:
            line["service"] = service
        instance = facts.hook_instance or hook_instance.get()
        if instance:
            line["hookInstance"] = instance
        if facts.scenarios:
            line["scenarios"] = facts.scenarios
        if facts.cards is not None:
            line["cards"] = facts.cards
        if facts.feedback_items is not None:
            line["feedback_items"] = facts.feedback_items
        level = logging.DEBUG if endpoint in QUIET_ENDPOINTS and status < 400 else logging.INFO
        if log.isEnabledFor(level):
            # What log.log does, without looking up the caller's file and line (the line has none).
            record = log.makeRecord(
                log.name, level, _NO_FILE, 0, "request", (), None, _NO_FUNCTION, line
            )
            log.handle(record)
