"""Security around the hook endpoints: EHR authentication (JWT), replay cache, CORS and body limits.

`install_security` adds the middleware when the app is built; `security_lifespan` runs inside the
app's lifespan (it opens the key-set HTTP client). The shared replay cache's table is the store's,
created by its migrations."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from cds_service.security.auth import Authenticator
from cds_service.security.cors import CorsMiddleware
from cds_service.security.middleware import AuthMiddleware, BodySizeLimitMiddleware
from cds_service.security.replay import (
    DatabaseReplayCache,
    MemoryReplayCache,
    RedisReplayCache,
    ReplayCache,
)
from cds_service.security.settings import SecuritySettings

log = logging.getLogger("cds_service.security")

__all__ = ["SecuritySettings", "install_security", "security_lifespan"]


def install_security(
    app: FastAPI, settings: SecuritySettings, engine: Engine, extra_headers: Sequence[str] = ()
) -> None:
    """Middleware, outermost first: CORS (Starlette's, security/cors.py; answers preflights without
    auth and labels every answer, 401s included), authentication, body size limit.
    `extra_headers` are request headers a browser may send besides Authorization and Content-Type
    (the go-live traffic mark)."""
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    authenticator: Authenticator | None = None
    if settings.auth_required:
        replay: ReplayCache
        if settings.replay_cache == "redis":
            replay = RedisReplayCache(settings.redis_url)
        elif settings.replay_cache == "database":
            replay = DatabaseReplayCache(engine)
        else:
            replay = MemoryReplayCache(settings.replay_cache_max_entries)
        authenticator = Authenticator(settings, replay)
        app.add_middleware(
            AuthMiddleware,
            authenticator=authenticator,
            public_base_url=settings.public_base_url,
            exempt_paths=settings.auth_exempt_paths,
        )
    app.add_middleware(
        CorsMiddleware,
        allow_origins=settings.cors_origin_list(),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", *extra_headers],
        max_age=600,
    )
    app.state.authenticator = authenticator


@asynccontextmanager
async def security_lifespan(app: FastAPI) -> AsyncIterator[None]:
    authenticator: Authenticator | None = app.state.authenticator
    if authenticator is None:
        log.warning(
            "AUTHENTICATION DISABLED (CDS_AUTH_REQUIRED=false): every caller is trusted. "
            "For local development only; never expose this service like this."
        )
        yield
        return
    settings = authenticator.settings
    if not settings.trusted_issuers:
        log.warning("auth_no_trusted_issuers: every request will be refused (CDS_TRUSTED_ISSUERS)")
    if settings.public_base_url is None:
        log.warning("auth_aud_from_host_header: set CDS_PUBLIC_BASE_URL behind a proxy")
    async with authenticator.session():
        yield
