"""Replay caches: the in-memory one (bounded, expiring) and the shared database one, which two
workers (two app instances on one database) use to refuse a token the other already accepted."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import httpx
import pytest
import respx
from sqlalchemy import create_engine

from cds_service.errors import JwksUnavailable
from cds_service.persistence.store import FeedbackStore
from cds_service.security.jwks import JwksCache
from cds_service.security.replay import DatabaseReplayCache, MemoryReplayCache
from cds_service.tls import client_tls
from tests.ops_helpers import postgres_schema
from tests.security_helpers import JWKS_URL, bearer, jwks, key, make_settings
from tests.support.client import app_client


class FakeClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.mark.anyio
async def test_memory_cache_refuses_a_second_use_until_expiry() -> None:
    clock = FakeClock()
    cache = MemoryReplayCache(max_entries=10, now=clock)
    assert await cache.first_use("iss", "a", clock.now + 60)
    assert not await cache.first_use("iss", "a", clock.now + 60)
    assert await cache.first_use("other-iss", "a", clock.now + 60)  # ids are per issuer
    clock.now += 61
    assert await cache.first_use("iss", "a", clock.now + 60)


@pytest.mark.anyio
async def test_memory_cache_is_bounded_and_drops_expired_entries_first() -> None:
    clock = FakeClock()
    cache = MemoryReplayCache(max_entries=3, now=clock)
    for n in range(3):
        assert await cache.first_use("iss", f"t{n}", clock.now + 10 + n)
    clock.now += 10.5  # t0 has expired
    assert await cache.first_use("iss", "t3", clock.now + 100)
    assert len(cache) == 3
    assert not await cache.first_use("iss", "t1", clock.now + 100)  # still recorded
    assert await cache.first_use("iss", "t4", clock.now + 100)  # full: soonest expiry dropped
    assert len(cache) == 3
    assert not await cache.first_use("iss", "t3", clock.now + 100)


@pytest.mark.anyio
async def test_database_cache_is_shared_between_instances(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'replay.sqlite3'}"
    clock = FakeClock()
    FeedbackStore(url).migrate()  # the table comes with the store's schema
    worker_a = DatabaseReplayCache(create_engine(url), now=clock)
    worker_b = DatabaseReplayCache(create_engine(url), now=clock)
    assert await worker_a.first_use("iss", "jti-1", clock.now + 60)
    assert not await worker_b.first_use("iss", "jti-1", clock.now + 60)
    assert not await worker_a.first_use("iss", "jti-1", clock.now + 60)
    assert await worker_b.first_use("iss", "jti-2", clock.now + 60)
    clock.now += 61
    assert await worker_b.first_use("iss", "jti-1", clock.now + 60)  # expired: usable again


@pytest.mark.anyio
async def test_database_cache_on_postgresql_accepts_a_token_once_under_concurrency() -> None:
    """Eight workers race with the same token: exactly one wins (skipped without PostgreSQL)."""
    with postgres_schema() as url:
        FeedbackStore(url).migrate()
        workers = [DatabaseReplayCache(create_engine(url)) for _ in range(8)]
        expires = time.time() + 60
        results: list[bool] = []

        async def attempt(worker: DatabaseReplayCache) -> None:
            results.append(await worker.first_use("iss", "raced-jti", expires))

        async with anyio.create_task_group() as group:
            for worker in workers:
                group.start_soon(attempt, worker)
        for worker in workers:
            worker.engine.dispose()
    assert sorted(results) == [False] * 7 + [True]


@pytest.mark.anyio
async def test_database_cache_purges_expired_rows(tmp_path: Path) -> None:
    clock = FakeClock()
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    FeedbackStore(url).migrate()
    cache = DatabaseReplayCache(create_engine(url), now=clock, purge_interval_s=30)
    for n in range(20):
        await cache.first_use("iss", f"t{n}", clock.now + 5)
    assert cache.count() == 20
    clock.now += 31
    await cache.first_use("iss", "fresh", clock.now + 5)
    assert cache.count() == 1


@pytest.mark.anyio
async def test_two_workers_on_one_database_refuse_a_replayed_token(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, replay_cache="database")
    headers = bearer("/cds-services")
    with respx.mock() as router:
        router.get(JWKS_URL).mock(return_value=httpx.Response(200, json=jwks(key("ES384"))))
        async with app_client(settings) as worker_a, app_client(settings) as worker_b:
            first = await worker_a.get("/cds-services", headers=headers)
            replayed = await worker_b.get("/cds-services", headers=headers)
    assert first.status_code == 200
    assert replayed.status_code == 401
    assert replayed.json()["error"] == "token-replayed"


@pytest.mark.anyio
async def test_memory_cache_per_worker_is_why_the_database_cache_exists(tmp_path: Path) -> None:
    """Documents the limit of the default: each process has its own memory."""
    settings = make_settings(tmp_path, replay_cache="memory")
    headers = bearer("/cds-services")
    with respx.mock() as router:
        router.get(JWKS_URL).mock(return_value=httpx.Response(200, json=jwks(key("ES384"))))
        async with app_client(settings) as worker_a, app_client(settings) as worker_b:
            assert (await worker_a.get("/cds-services", headers=headers)).status_code == 200
            assert (await worker_b.get("/cds-services", headers=headers)).status_code == 200
            assert (await worker_a.get("/cds-services", headers=headers)).status_code == 401


# --- JWKS cache unit tests (TTL, refresh bound, stale keys on failure) --------------------------


@pytest.mark.anyio
async def test_jwks_cache_ttl_and_stale_keys_when_refresh_fails() -> None:
    clock = FakeClock()
    url = "https://ehr.example.org/jwks"
    with respx.mock() as router:
        route = router.get(url)
        route.side_effect = [
            httpx.Response(200, json=jwks(key("ES384"))),
            httpx.Response(503),
            httpx.Response(200, json=jwks(key("RS384"))),
        ]
        async with httpx.AsyncClient(verify=client_tls()) as client:
            cache = JwksCache(client, ttl_s=100, refresh_interval_s=10, monotonic=clock)
            assert await cache.key(url, key("ES384").kid) is not None
            clock.now += 50
            assert await cache.key(url, key("ES384").kid) is not None  # fresh: no fetch
            assert route.call_count == 1
            clock.now += 60  # expired; the refresh fails: the known keys are kept
            assert await cache.key(url, key("ES384").kid) is not None
            assert route.call_count == 2
            assert await cache.key(url, key("ES384").kid) is not None  # no retry before 10 s
            assert route.call_count == 2
            clock.now += 11
            assert await cache.key(url, key("ES384").kid) is None  # rotated away
            assert await cache.key(url, key("RS384").kid) is not None
            assert route.call_count == 3


@pytest.mark.anyio
async def test_jwks_cache_without_keys_raises_and_backs_off() -> None:
    clock = FakeClock()
    url = "https://ehr.example.org/jwks"
    with respx.mock() as router:
        route = router.get(url).mock(side_effect=httpx.ConnectError("down"))
        async with httpx.AsyncClient(verify=client_tls()) as client:
            cache = JwksCache(client, ttl_s=100, refresh_interval_s=10, monotonic=clock)
            for _ in range(3):
                with pytest.raises(JwksUnavailable):
                    await cache.key(url, "any")
            assert route.call_count == 1


@pytest.mark.anyio
async def test_jwks_cache_refuses_an_oversized_key_set() -> None:
    url = "https://ehr.example.org/jwks"
    with respx.mock() as router:
        router.get(url).mock(return_value=httpx.Response(200, content=b" " * 300_000))
        async with httpx.AsyncClient(verify=client_tls()) as client:
            cache = JwksCache(client, ttl_s=100, refresh_interval_s=0)
            with pytest.raises(JwksUnavailable):
                await cache.key(url, "any")


@pytest.mark.anyio
async def test_redis_cache_is_shared_across_replicas() -> None:
    """Two replicas (two clients) on one Redis: a token id is accepted once, by either of them."""
    import uuid as uuid_module

    import redis.asyncio

    probe = redis.asyncio.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1.0)
    try:
        await probe.ping()
    except Exception as exc:
        pytest.skip(f"no Redis answers on 127.0.0.1:6379 ({type(exc).__name__})")
    finally:
        await probe.aclose()
    from cds_service.security.replay import RedisReplayCache

    one, two = (
        RedisReplayCache("redis://127.0.0.1:6379/0"),
        RedisReplayCache("redis://127.0.0.1:6379/0"),
    )
    jti = str(uuid_module.uuid4())
    expires = time.time() + 60
    try:
        assert await one.first_use("https://ehr.example.org", jti, expires) is True
        assert await two.first_use("https://ehr.example.org", jti, expires) is False
        assert await one.first_use("https://other.example.org", jti, expires) is True
    finally:
        await one.close()
        await two.close()
