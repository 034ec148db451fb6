"""The trusted issuers' JSON Web Key Sets, fetched over HTTP and cached.

A set is cached for `ttl_s`. A token whose `kid` is not in the cached set triggers a refresh (the
issuer may have rotated its keys), but one set is fetched at most once per `refresh_interval_s`, so
tokens with made-up `kid`s cannot turn the service into a load generator against the issuer. When a
refresh fails, the keys already known keep being used. A set is read within `max_bytes`, counted on
the wire and after decompression (cds_service/bounded_read.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from cds_service.bounded_read import ACCEPT_ENCODING, parse_json, read_body
from cds_service.errors import JwksUnavailable, ResponseRefused
from cds_service.observability.metrics import record_limit_exceeded

log = logging.getLogger(__name__)

MAX_JWKS_BYTES = 256 * 1024  # the default of CDS_JWKS_MAX_BYTES


@dataclass
class _CachedSet:
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    fetched_at: float | None = None
    attempted_at: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class JwksCache:
    def __init__(
        self,
        client: httpx.AsyncClient,
        ttl_s: float,
        refresh_interval_s: float,
        monotonic: Callable[[], float] = time.monotonic,
        max_bytes: int = MAX_JWKS_BYTES,
    ) -> None:
        self.client = client
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.refresh_interval_s = refresh_interval_s
        self._monotonic = monotonic
        self._sets: dict[str, _CachedSet] = {}
        self.fetches = 0

    async def key(self, jwks_url: str, kid: str) -> dict[str, Any] | None:
        """The JWK with this `kid` from the set at `jwks_url`, or None when the set has no such key.
        Raises JwksUnavailable when the set cannot be fetched and nothing is cached."""
        cached = self._sets.setdefault(jwks_url, _CachedSet())
        if self._fresh(cached) and kid in cached.keys:
            return cached.keys[kid]
        async with cached.lock:
            if not (self._fresh(cached) and kid in cached.keys) and self._may_fetch(cached):
                await self._refresh(jwks_url, cached)
        if cached.fetched_at is None:
            raise JwksUnavailable("jwks-fetch-failed")
        return cached.keys.get(kid)

    def _fresh(self, cached: _CachedSet) -> bool:
        return cached.fetched_at is not None and self._monotonic() - cached.fetched_at < self.ttl_s

    def _may_fetch(self, cached: _CachedSet) -> bool:
        return (
            cached.attempted_at is None
            or self._monotonic() - cached.attempted_at >= self.refresh_interval_s
        )

    async def _refresh(self, jwks_url: str, cached: _CachedSet) -> None:
        cached.attempted_at = self._monotonic()
        self.fetches += 1
        try:
            keys = await self._fetch(jwks_url)
        except JwksUnavailable as exc:
            log.warning(
                "jwks_fetch_failed", extra={"cause": exc.cause, "cached": bool(cached.keys)}
            )
            return
        cached.keys = keys
        cached.fetched_at = cached.attempted_at

    async def _fetch(self, jwks_url: str) -> dict[str, dict[str, Any]]:
        try:
            async with self.client.stream(
                "GET",
                jwks_url,
                headers={"Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING},
            ) as response:
                if response.status_code != 200:
                    raise JwksUnavailable(f"http-{response.status_code}")
                body = await read_body(response, self.max_bytes)
            document = await parse_json(body)
        except ResponseRefused as exc:
            cause = "jwks-too-large" if exc.cause == "response-too-large" else exc.cause
            if cause == "jwks-too-large":
                record_limit_exceeded("jwks", exc.cause)
            raise JwksUnavailable(cause) from None
        except httpx.TimeoutException as exc:
            raise JwksUnavailable("timeout") from exc
        except httpx.HTTPError as exc:
            raise JwksUnavailable("connection-error") from exc
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise JwksUnavailable("not-a-jwks")
        return {
            jwk["kid"]: jwk
            for jwk in entries
            if isinstance(jwk, dict)
            and isinstance(jwk.get("kid"), str)
            and jwk.get("use", "sig") == "sig"
        }
