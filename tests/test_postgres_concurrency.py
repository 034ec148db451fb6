"""Concurrent feedback against the service as it runs in production: uvicorn with two workers on the
loopback, PostgreSQL as the shared store, Prometheus in multiprocess mode. Parallel clients post
1,000 distinct feedback items plus deliberate resubmissions; every item must be stored exactly once
and every post answered 200. The figures are written to test-artifacts/postgres-concurrency.json."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.ops_helpers import SELECT, feedback_item, hook_request, postgres_schema
from tests.support.processes import free_port, stop

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
DISTINCT = 1000
DUPLICATES = 150
CLIENTS = 32
WORKERS = 2
HOOK_CALLS = 40


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, database URL) of a two-worker uvicorn serving the app on a fresh schema."""
    with postgres_schema() as database_url:
        metrics_dir = tmp_path_factory.mktemp("prometheus")
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "CDS_LOG_LEVEL": "WARNING",
            "CDS_AUTH_REQUIRED": "false",  # this test is about the store; auth has its own tests
        }
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "cds_service.asgi:app",
            "--host",
            "127.0.0.1",
        ]
        command += ["--port", str(port), "--workers", str(WORKERS), "--no-access-log"]
        log_path = metrics_dir.parent / "uvicorn.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, process, log_path)
            yield base, database_url
        finally:
            stop(process, timeout_s=20)


def _wait_ready(base: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = log_path.read_text(errors="replace")[-2000:]
            pytest.fail(f"uvicorn exited with {process.returncode}: {stderr}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail("the service did not become ready within 60 s")


def _metric(scrape: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in scrape.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


@pytest.mark.anyio
async def test_a_thousand_concurrent_feedback_posts_are_each_stored_once(
    service: tuple[str, str],
) -> None:
    base, database_url = service
    now = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        cards = []
        for i in range(HOOK_CALLS):
            response = await client.post(
                f"/cds-services/{SELECT}", json=hook_request(f"load-{i}", now=now)
            )
            assert response.status_code == 200
            cards.append(response.json()["cards"][0]["uuid"])
    started_at = now - timedelta(minutes=5)
    items = [
        feedback_item(
            cards[i] if i < HOOK_CALLS else f"load-card-{i}",
            "overridden" if i % 3 else "accepted",
            reason="severe-refractory" if i % 3 == 1 else None,
            at=started_at + timedelta(milliseconds=i),
        )
        for i in range(DISTINCT)
    ]
    rng = random.Random(5)
    posts = items + [rng.choice(items) for _ in range(DUPLICATES)]
    rng.shuffle(posts)
    statuses: list[int] = []
    stored: list[int] = []

    async def client_loop(share: list[dict[str, Any]]) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as own:
            for item in share:
                response = await own.post(
                    f"/cds-services/{SELECT}/feedback", json={"feedback": [item]}
                )
                statuses.append(response.status_code)
                if response.status_code == 200:
                    stored.append(response.json()["stored"])

    began = time.perf_counter()
    with anyio.fail_after(240):
        async with anyio.create_task_group() as group:
            for c in range(CLIENTS):
                group.start_soon(client_loop, posts[c::CLIENTS])
    elapsed = time.perf_counter() - began

    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT count(*) FROM feedback")).scalar_one()
        repeated = connection.execute(
            text(
                "SELECT count(*) FROM (SELECT 1 FROM feedback GROUP BY card_uuid, outcome, "
                "outcome_timestamp HAVING count(*) > 1) AS twice"
            )
        ).scalar_one()
        joined = connection.execute(
            text("SELECT count(*) FROM feedback WHERE hook_instance LIKE 'load-%'")
        ).scalar_one()
    engine.dispose()
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        scrape = (await client.get("/metrics")).text

    figures = {
        "posts": len(posts),
        "distinct_items": DISTINCT,
        "deliberate_duplicates": DUPLICATES,
        "concurrent_clients": CLIENTS,
        "uvicorn_workers": WORKERS,
        "elapsed_s": round(elapsed, 2),
        "posts_per_s": round(len(posts) / elapsed, 1),
        "rows": rows,
        "rows_stored_twice": repeated,
        "status_codes": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "stored_reported": sum(stored),
        "feedback_items_metric": _metric(scrape, "cds_feedback_items_total"),
        "feedback_stored_metric": _metric(scrape, "cds_feedback_items_stored_total"),
    }
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "postgres-concurrency.json").write_text(json.dumps(figures, indent=2) + "\n")

    assert statuses == [200] * len(posts), figures
    assert rows == DISTINCT and repeated == 0, figures
    assert sum(stored) == DISTINCT, figures
    assert joined == HOOK_CALLS, figures  # feedback on audited cards carries its hookInstance
    # Both workers' counters add up in multiprocess mode.
    assert figures["feedback_items_metric"] == len(posts), figures
    assert figures["feedback_stored_metric"] == DISTINCT, figures
