"""Replay protection for token ids (`jti`): a token is accepted once, until it expires.

Two implementations of one small interface: `MemoryReplayCache` (default; per process, bounded) and
`DatabaseReplayCache` (a table with a unique key, shared by every worker and replica that uses the
same DATABASE_URL; the table is in the store's schema, `persistence.schema`). With several workers
the in-memory cache lets a token be replayed once per worker, so multi-worker deployments select a
shared cache: Redis (CDS_REPLAY_CACHE=redis, one `SET key NX EX ttl` per call, no database write on
the request path) or the database (CDS_REPLAY_CACHE=database, the fallback)."""

from __future__ import annotations

import hashlib
import heapq
import logging
import time
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from cds_service.persistence.schema import jwt_replay

log = logging.getLogger(__name__)

WallClock = Callable[[], float]


class ReplayCache(Protocol):
    async def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        """Record the token id; False when it was already recorded and has not yet expired."""
        ...


def token_key(issuer: str, jti: str) -> str:
    """Token ids are unique per issuer; hashing gives a fixed-size key whatever their length."""
    return hashlib.sha256(f"{issuer}\n{jti}".encode("utf-8", "surrogatepass")).hexdigest()


class MemoryReplayCache:
    """Entries expire with their token. When full, the entry closest to expiry is dropped first (and
    a warning logged): that token is the one with the least time left to be replayed."""

    def __init__(self, max_entries: int, now: WallClock = time.time) -> None:
        self.max_entries = max_entries
        self._now = now
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    async def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        now = self._now()
        key = token_key(issuer, jti)
        known = self._expiry.get(key)
        if known is not None and known >= now:
            return False
        self._purge(now)
        if len(self._expiry) >= self.max_entries:
            log.warning("replay_cache_full", extra={"max_entries": self.max_entries})
            while len(self._expiry) >= self.max_entries:
                self._pop()
        self._expiry[key] = expires_at
        heapq.heappush(self._heap, (expires_at, key))
        return True

    def _purge(self, now: float) -> None:
        while self._heap and self._heap[0][0] < now:
            self._pop()

    def _pop(self) -> None:
        expires_at, key = heapq.heappop(self._heap)
        if self._expiry.get(key) == expires_at:
            del self._expiry[key]


class DatabaseReplayCache:
    """The primary key makes the check atomic across processes: of two requests carrying the same
    token, exactly one insert succeeds. Expired rows are deleted as they are met and, in bulk, at
    most once per `purge_interval_s`."""

    def __init__(
        self, engine: Engine, now: WallClock = time.time, purge_interval_s: float = 60.0
    ) -> None:
        self.engine = engine
        self._now = now
        self._purge_interval_s = purge_interval_s
        self._last_purge = 0.0

    async def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        return await run_in_threadpool(self._first_use, token_key(issuer, jti), expires_at)

    def _first_use(self, key: str, expires_at: float) -> bool:
        now = self._now()
        purge_all = now - self._last_purge >= self._purge_interval_s
        try:
            with self.engine.begin() as connection:
                expired = jwt_replay.c.expires_at < now
                if purge_all:
                    connection.execute(delete(jwt_replay).where(expired))
                else:
                    connection.execute(
                        delete(jwt_replay).where(jwt_replay.c.token_key == key, expired)
                    )
                connection.execute(insert(jwt_replay).values(token_key=key, expires_at=expires_at))
        except IntegrityError:
            return False
        if purge_all:
            self._last_purge = now
        return True

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(jwt_replay)).scalar_one()
            )


class RedisReplayCache:
    """Shared by every replica using the same Redis: `SET key 1 NX EX ttl` succeeds only for the first
    use of a token id, and Redis expires the key with the token. A Redis error fails closed (the
    token is refused), like every other verification failure."""

    def __init__(self, url: str, now: WallClock = time.time) -> None:
        import redis.asyncio

        self.client = redis.asyncio.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0
        )
        self.now = now

    async def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        ttl = max(1, int(expires_at - self.now()) + 1)
        key = f"cds:jti:{token_key(issuer, jti)}"
        return bool(await self.client.set(key, b"1", nx=True, ex=ttl))

    async def close(self) -> None:
        await self.client.aclose()
