"""Prometheus metrics: requests, latency, cards, feedback outcomes and FHIR fetches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.api.deps import runtime_of
from tests.ops_helpers import (
    SELECT,
    call_hook,
    feedback_item,
    hook_request,
    metric,
    settings_for,
)
from tests.support.client import app_client


@pytest.mark.anyio
async def test_hook_and_feedback_calls_are_counted(tmp_path: Path) -> None:
    hook = {"service": SELECT, "endpoint": "hook", "status": "200"}
    cards = {"service": SELECT, "scenario": "pdph-acute-red-flags", "indicator": "critical"}
    before = (
        metric("cds_requests_total", **hook),
        metric("cds_request_duration_seconds_count", **hook),
        metric("cds_cards_total", **cards),
        metric("cds_feedback_items_total", service=SELECT, outcome="accepted"),
        metric("cds_feedback_items_stored_total", service=SELECT),
    )
    async with app_client(settings_for(f"sqlite:///{tmp_path}/s.sqlite3")) as client:
        shown = await call_hook(client, hook_request("m-1", temperature_c=39.0))
        item = feedback_item(shown[0]["uuid"], "accepted", accepted=["x"])
        for _ in range(2):
            await client.post(f"/cds-services/{SELECT}/feedback", json={"feedback": [item]})
        unknown = await client.post("/cds-services/no-such-service", json=hook_request("m-2"))
        scrape = await client.get("/metrics")
    after = (
        metric("cds_requests_total", **hook),
        metric("cds_request_duration_seconds_count", **hook),
        metric("cds_cards_total", **cards),
        metric("cds_feedback_items_total", service=SELECT, outcome="accepted"),
        metric("cds_feedback_items_stored_total", service=SELECT),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1, 2, 1]
    assert unknown.status_code == 404
    assert metric("cds_requests_total", service="unknown", endpoint="hook", status="404") >= 1
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    for name in (
        "cds_requests_total",
        "cds_request_duration_seconds_bucket",
        "cds_cards_total",
        "cds_feedback_items_total",
        "cds_fhir_fetch_duration_seconds",
        "cds_store_errors_total",
    ):
        assert name in scrape.text
    assert "no-such-service" not in scrape.text


def _fhir_server(failing: str) -> httpx.MockTransport:
    """Answers every query with an empty searchset (or the patient), except `failing` with a 500."""

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if failing in path:
            return httpx.Response(500, text="boom")
        if "/Patient/" in path:
            body: dict[str, Any] = {"resourceType": "Patient", "id": "p", "birthDate": "1980-01-01"}
        else:
            body = {"resourceType": "Bundle", "type": "searchset", "entry": []}
        return httpx.Response(200, content=json.dumps(body).encode())

    return httpx.MockTransport(answer)


@pytest.mark.anyio
async def test_fhir_fetches_are_counted_and_timed(tmp_path: Path) -> None:
    request = hook_request("fetch-1")
    request.pop("prefetch")
    request["fhirServer"] = "http://fhir.test/fhir"
    before_ok = metric("cds_fhir_fetch_total", outcome="ok")
    before_500 = metric("cds_fhir_fetch_errors_total", cause="http-500")
    before_count = metric("cds_fhir_fetch_duration_seconds_count")
    async with app_client(settings_for(f"sqlite:///{tmp_path}/s.sqlite3")) as client:
        app = client.app  # type: ignore[attr-defined]
        async with httpx.AsyncClient(transport=_fhir_server("/Procedure")) as fhir:
            runtime_of(app).fhir_client = fhir
            response = await client.post(f"/cds-services/{SELECT}", json=request)
    assert response.status_code == 412
    # Six templates: four required (one fails with a 500) and two optional (imaging history).
    assert metric("cds_fhir_fetch_total", outcome="ok") - before_ok == 5
    assert metric("cds_fhir_fetch_errors_total", cause="http-500") - before_500 == 1
    assert metric("cds_fhir_fetch_duration_seconds_count") - before_count == 6
