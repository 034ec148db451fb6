"""In-process latency through the ASGI app (httpx's ASGI transport), next to two floors:

- the framework floor: a route mounted on the same app (same middleware and error handlers) that
  reads the body exactly as the production route does and answers `{"cards": []}` without evaluating;
- the bare floor: a route that only reads the body bytes and parses them with orjson;
- the JSON floor: `orjson.loads` of the same bytes, no HTTP at all.

The floor routes exist only on the app this module builds; the production app has none.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from fastapi import FastAPI, Request, Response

from cds_service.api.app import create_app
from cds_service.config import Settings

FLOOR_PATH = "/bench/floor/{service_id}"
BARE_FLOOR_PATH = "/bench/bare-floor/{service_id}"
EMPTY = b'{"cards":[]}'
HEADERS = {"content-type": "application/json", "accept": "application/json"}


def _mount_floors(app: FastAPI) -> None:
    """Benchmark-only routes on the app create_app built."""
    from bench import floor_route

    floor_route.mount(app, FLOOR_PATH)

    async def bare_floor(service_id: str, request: Request) -> Response:
        orjson.loads(await request.body())
        return Response(EMPTY, media_type="application/json")

    app.add_api_route(BARE_FLOOR_PATH, bare_floor, methods=["POST"], include_in_schema=False)
    floor_route.tried_after_the_hook_route(app)


def build_app(now: datetime, workdir: Path) -> FastAPI:
    settings = Settings(
        database_url=f"sqlite:///{workdir / 'bench-feedback.sqlite3'}",
        log_level=os.environ.get("CDS_LOG_LEVEL", "INFO"),
        auth_required=False,  # the benchmark measures evaluation, not JWT verification
    )
    app = create_app(settings, clock=lambda: now)
    # Logs stay on (their cost is part of a real call) but go nowhere, not to the terminal.
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)
    # The benchmark's own client would log every call at INFO: that is not the service's cost.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    _mount_floors(app)
    return app


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {
        "n": len(ordered),
        "mean_ms": statistics.fmean(ordered),
        "p50_ms": pick(0.50),
        "p95_ms": pick(0.95),
        "p99_ms": pick(0.99),
        "max_ms": ordered[-1],
    }


async def _timed(call: Callable[[], Awaitable[None]], calls: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        await call()
    gc.collect()
    samples: list[float] = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        await call()
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return samples


def json_floor(body: bytes, calls: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        orjson.loads(body)
    gc.collect()
    samples = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        orjson.loads(body)
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return percentiles(samples)


class InProcess:
    """An app with its lifespan running and an httpx client on its ASGI transport."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._stack = AsyncExitStack()
        self._tmp = tempfile.TemporaryDirectory(prefix="cds-bench-")
        self.app = build_app(now, Path(self._tmp.name))
        self.client: httpx.AsyncClient

    async def __aenter__(self) -> InProcess:
        await self._stack.enter_async_context(self.app.router.lifespan_context(self.app))
        transport = httpx.ASGITransport(app=self.app)
        self.client = await self._stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://bench")
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()
        self._tmp.cleanup()

    async def post(self, path: str, body: bytes) -> httpx.Response:
        return await self.client.post(path, content=body, headers=HEADERS)

    async def interleaved(
        self, paths: dict[str, str], body: bytes, calls: int, warmup: int
    ) -> dict[str, dict[str, float]]:
        """Latency of each route and of orjson.loads, measured in turn call by call, so that a slow
        patch of the machine (it is shared and noisy) hits every column alike, not one of them."""
        for name, path in paths.items():
            check = await self.post(path, body)
            if check.status_code != 200:
                raise RuntimeError(f"{name}: HTTP {check.status_code}: {check.text[:300]}")
        samples: dict[str, list[float]] = {name: [] for name in (*paths, "json")}
        for i in range(warmup + calls):
            if i == warmup:
                gc.collect()
            for name, path in paths.items():
                started = time.perf_counter_ns()
                response = await self.client.post(path, content=body, headers=HEADERS)
                elapsed = (time.perf_counter_ns() - started) / 1e6
                if response.status_code != 200:
                    raise RuntimeError(f"{name}: HTTP {response.status_code}")
                if i >= warmup:
                    samples[name].append(elapsed)
            started = time.perf_counter_ns()
            orjson.loads(body)
            if i >= warmup:
                samples["json"].append((time.perf_counter_ns() - started) / 1e6)
        return {name: percentiles(values) for name, values in samples.items()}

    async def latency(self, path: str, body: bytes, calls: int, warmup: int) -> dict[str, float]:
        check = await self.post(path, body)
        if check.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {check.status_code}: {check.text[:300]}")

        async def call() -> None:
            response = await self.client.post(path, content=body, headers=HEADERS)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: HTTP {response.status_code}")

        return percentiles(await _timed(call, calls, warmup))


def service_paths(service: str) -> dict[str, str]:
    return {
        "app": f"/cds-services/{service}",
        "floor": FLOOR_PATH.format(service_id=service),
        "bare": BARE_FLOOR_PATH.format(service_id=service),
    }


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]
