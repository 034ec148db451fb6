"""Typed dependencies of the routes: one `Runtime` built by the app factory, read through
`RuntimeDep` instead of untyped `app.state` lookups."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Request

from cds_service.config import Settings
from cds_service.errors import CdsError
from cds_service.golive.silent import NOT_SILENT, SilentMode
from cds_service.knowledge.registry import HookService
from cds_service.persistence.audit_writer import AuditWriter
from cds_service.persistence.store import FeedbackStore
from cds_service.pipeline.config import EvaluationConfig

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Everything the routes use, built once at start-up."""

    settings: Settings
    services: dict[str, HookService]
    store: FeedbackStore
    audit: AuditWriter  # started and closed by the lifespan
    evaluation: EvaluationConfig
    clock: Clock = utc_now
    fhir_client: httpx.AsyncClient | None = None  # opened by the lifespan
    # Go-live (docs/go-live.md): the scenarios whose cards are withheld (CDS_SILENT_SCENARIOS).
    silent: SilentMode = NOT_SILENT

    def service(self, service_id: str) -> HookService:
        if service_id not in self.services:
            raise CdsError(404, "unknown-service", f"no CDS service with id {service_id!r}")
        return self.services[service_id]

    def client(self) -> httpx.AsyncClient:
        if self.fhir_client is None:  # pragma: no cover - the lifespan always opens it
            raise RuntimeError("the app's lifespan has not started")
        return self.fhir_client


def runtime_of(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI would run a plain `def` dependency in a worker thread on every request.
    return runtime_of(request.app)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
