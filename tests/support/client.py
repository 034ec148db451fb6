"""The one way tests talk to an app in-process: httpx over ASGI, with the app's lifespan running;
`app_client` builds the app from settings first, on the tests' clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from cds_service.api.app import create_app
from cds_service.api.deps import Clock
from cds_service.config import Settings
from tests.support.clock import NOW


@asynccontextmanager
async def asgi_client(
    app: FastAPI, base_url: str = "http://testserver"
) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@asynccontextmanager
async def app_client(
    settings: Settings, clock: Clock = lambda: NOW, base_url: str = "http://testserver"
) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(settings, clock=clock), base_url) as client:
        yield client
