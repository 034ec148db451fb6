"""The benchmark measures what it claims: its large and scaled patients get exactly the cards of the
seed they grow from (the optimised paths stay correct at size), its floor route answers no cards and
exists only on the benchmark's app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import inprocess, payloads
from cds_service.api.app import create_app
from cds_service.config import Settings
from cds_tools.replay import observed_outcome
from tests.conftest import NOW

SERVICE = "/cds-services/pdph-imaging-order-select"


def _expected() -> list[dict[str, Any]]:
    return payloads.expected_cards(payloads.LARGE_BASE, NOW)


@pytest.mark.anyio
@pytest.mark.parametrize("total", [10, 100, 1000, 1900])
async def test_large_patients_get_the_seed_cards(client: httpx.AsyncClient, total: int) -> None:
    # The large patient: 1,700 resources plus 200 radiology reports of imaging history.
    request = (
        payloads.large_patient_request(NOW)
        if total == 1900
        else payloads.scaled_request(NOW, total)
    )
    assert abs(payloads.resource_count(request) - total) <= 2
    response = await client.post(
        SERVICE, content=payloads.encode(request), headers=inprocess.HEADERS
    )
    assert response.status_code == 200, response.text
    assert observed_outcome(response.json())["cards"] == _expected()


def test_generation_is_deterministic() -> None:
    one = payloads.encode(payloads.large_patient_request(NOW, 50, 10, 20))
    two = payloads.encode(payloads.large_patient_request(NOW, 50, 10, 20))
    assert one == two


@pytest.mark.anyio
async def test_floor_routes_answer_no_cards_and_only_on_the_bench_app(tmp_path: Path) -> None:
    app = inprocess.build_app(NOW, tmp_path)
    body = payloads.encode(payloads.seed_request("seed-acute", NOW))
    paths = inprocess.service_paths("pdph-imaging-order-select")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
            for kind in ("floor", "bare"):
                response = await c.post(paths[kind], content=body, headers=inprocess.HEADERS)
                assert response.status_code == 200
                assert response.json() == {"cards": []}
            bad = await c.post(paths["floor"], content=b"{", headers=inprocess.HEADERS)
            assert bad.status_code == 400
    production = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'p.sqlite3'}"))
    assert not [r for r in production.routes if "/bench/" in getattr(r, "path", "")]


RULES_OFF_CHECK = """
import asyncio, httpx
from bench import payloads
from bench import rules_off_app as rules_off

async def main() -> None:
    now = payloads.bench_now()
    bodies = [payloads.encode(payloads.seed_request(n, now)) for n in payloads.SEED_FIXTURES]
    bodies.append(payloads.encode(payloads.large_patient_request(now)))
    app = rules_off.app
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://b") as c:
            for body in bodies * 2:
                r = await c.post("/cds-services/pdph-imaging-order-select", content=body,
                                 headers={"content-type": "application/json"})
                assert r.status_code == 200, r.text
                cards = r.json()["cards"]
                topic = cards[0]["source"]["topic"]["code"]
                print(len(cards), topic, cards[0]["extension"]["pdph-imaging.rating"])
    print("memo", len(rules_off._answers))

asyncio.run(main())
"""


@pytest.mark.slow  # a subprocess
def test_the_rules_off_app_answers_like_the_service_from_one_evaluation_per_body() -> None:
    """bench/rules_off_app.py (a loopback row of the benchmark) answers each distinct body with the
    service's own answer, evaluated once: 3 bodies sent twice leave 3 remembered evaluations."""
    done = subprocess.run(
        [sys.executable, "-c", RULES_OFF_CHECK],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
        env={"CDS_AUTH_REQUIRED": "false", "DATABASE_URL": "sqlite://", "PATH": ""},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[-1] == "memo 3"
    assert lines[:3] == lines[3:6]  # the second round answered from the memo, unchanged
    expected = [payloads.expected_cards(name, NOW)[0] for name in payloads.SEED_FIXTURES]
    expected.append(payloads.expected_cards(payloads.LARGE_BASE, NOW)[0])
    assert lines[:3] == [f"1 {card['scenario']} {card['rating']}" for card in expected]
