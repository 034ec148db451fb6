"""Readiness, the access log (one JSON line per request, no PHI) and uvicorn's access log silenced."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import httpx
import pytest

from cds_service.observability.access import classify
from cds_service.observability.logs import JsonFormatter, configure_logging
from tests.ops_helpers import (
    SELECT,
    call_hook,
    feedback_item,
    hook_request,
    settings_for,
)
from tests.support.client import app_client

SERVICES = [SELECT]


@pytest.mark.anyio
async def test_ready_when_store_is_migrated_and_knowledge_loaded(tmp_path: Path) -> None:
    async with app_client(settings_for(f"sqlite:///{tmp_path}/s.sqlite3")) as client:
        ready = await client.get("/readyz")
        alive = await client.get("/healthz")
    assert ready.status_code == 200
    body = ready.json()
    assert (body["status"], body["checks"]) == ("ready", {"knowledge": "ok", "store": "ok"})
    # The knowledge set behind every rating: version + content hash, per service.
    assert set(body["knowledge"]) == {SELECT, "pdph-imaging-order-sign"}
    assert all(re.fullmatch(r"[\w.-]+\+[0-9a-f]{12}", v) for v in body["knowledge"].values())
    assert alive.status_code == 200


@pytest.mark.anyio
async def test_a_store_outage_never_takes_a_replica_out_of_rotation(tmp_path: Path) -> None:
    """Readiness says whether this replica can serve hook calls. The store is shared: failing
    readiness on it would take every replica out at once (issue 15's trial: 13 % of hook calls
    answered during a database restart). Its state is in the body and in cds_store_up."""
    from prometheus_client import REGISTRY

    unmigrated = settings_for(f"sqlite:///{tmp_path}/s.sqlite3", migrate_on_startup=False)
    async with app_client(unmigrated) as client:
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"]["store"] == "schema-not-current"
    assert REGISTRY.get_sample_value("cds_store_up") == 0
    # Nothing listens on port 9 of the loopback: the connection is refused at once.
    closed = settings_for(
        "postgresql+psycopg://postgres@127.0.0.1:9/test", migrate_on_startup=False
    )
    async with app_client(closed) as client:
        response = await client.get("/readyz")
        hook = await client.post(f"/cds-services/{SELECT}", json=hook_request("h-db-down"))
        feedback = await client.post(
            f"/cds-services/{SELECT}/feedback", json={"feedback": [feedback_item("c-1")]}
        )
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["checks"]) == (
        "ready",
        {"knowledge": "ok", "store": "unreachable"},
    )
    assert feedback.status_code == 503 and feedback.headers["retry-after"]
    assert hook.status_code == 200 and hook.json()["cards"]  # the audit write failed quietly


@pytest.mark.anyio
async def test_one_access_line_per_request_without_patient_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fetched = hook_request("h-fetch", patient="pat-secret-77")
    fetched.pop("prefetch")
    fetched["fhirServer"] = "http://fhir.test/fhir"
    empty = httpx.MockTransport(lambda _: httpx.Response(404))
    async with app_client(settings_for(f"sqlite:///{tmp_path}/s.sqlite3")) as client:
        logging.getLogger().addHandler(caplog.handler)  # create_app replaced the root handlers
        caplog.set_level(logging.DEBUG)
        cards = await call_hook(client, hook_request("h-1", patient="pat-secret-77"))
        await client.post(
            f"/cds-services/{SELECT}/feedback",
            json={"feedback": [feedback_item(cards[0]["uuid"], reason="local-protocol")]},
        )
        async with httpx.AsyncClient(transport=empty) as fhir:
            client.app.state.fhir_client = fhir  # type: ignore[attr-defined]
            await client.post(f"/cds-services/{SELECT}", json=fetched)
        await client.get("/healthz")
    access = [r for r in caplog.records if r.name == "cds_service.observability.access"]
    assert [(r.__dict__["endpoint"], r.__dict__["status"]) for r in access] == [
        ("hook", 200),
        ("feedback", 200),
        ("hook", 412),
        ("healthz", 200),
    ]
    hook_line = json.loads(JsonFormatter().format(access[0]))
    assert hook_line["event"] == "request"
    assert hook_line["hookInstance"] == "h-1"
    assert hook_line["service"] == SELECT
    assert hook_line["scenarios"] == ["pdph-acute"]
    assert hook_line["cards"] == 1
    assert hook_line["duration_ms"] > 0
    assert access[1].__dict__["feedback_items"] == 1
    assert access[2].__dict__["hookInstance"] == "h-fetch"
    assert access[3].levelno == logging.DEBUG
    everything = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "pat-secret-77" not in everything


def test_any_extra_value_becomes_a_json_line() -> None:
    """Values JSON has no type for are written as strings, integers beyond 64 bits included: a log
    line never raises inside the logging machinery."""
    record = logging.makeLogRecord(
        {
            "name": "cds_service.x",
            "levelno": logging.WARNING,
            "levelname": "WARNING",
            "msg": "odd_values",
            "big": 2**70,
            "when": Path("/tmp/x"),
            "codes": ("G97.1",),
        }
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "odd_values" and line["level"] == "warning"
    assert line["big"] == 2**70 and line["when"] == "/tmp/x" and line["codes"] == ["G97.1"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])


def test_uvicorn_access_log_gives_way_to_ours() -> None:
    configure_logging("INFO")
    assert logging.getLogger("uvicorn.access").disabled
    assert logging.getLogger("uvicorn.error").propagate
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING


def test_paths_are_classified_without_echoing_client_input() -> None:
    assert classify("/cds-services", SERVICES) == ("discovery", "")
    assert classify(f"/cds-services/{SELECT}", SERVICES) == ("hook", SELECT)
    assert classify(f"/cds-services/{SELECT}/feedback", SERVICES) == ("feedback", SELECT)
    assert classify("/cds-services/Patient-123", SERVICES) == ("hook", "unknown")
    assert classify("/cds-services/x/y/z", SERVICES) == ("other", "")
    assert classify("/analytics/overrides", SERVICES) == ("analytics", "")
    assert classify("/readyz", SERVICES) == ("readyz", "")
    assert classify("/Patient/123", SERVICES) == ("other", "")
