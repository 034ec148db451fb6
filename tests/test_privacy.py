"""Logs never carry names, identifiers or resource contents: only the hookInstance, service id,
scenario, timings, counts and classes of error. The logs of full requests (a card with a skipped
invalid resource, a FHIR fetch fault, a refused token) are captured as the service writes them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import respx

from cds_service.api.app import create_app
from cds_service.observability.logs import JsonFormatter
from tests.security_helpers import (
    FHIR_BASE,
    JWKS_URL,
    NOW,
    PATIENT_FAMILY,
    PATIENT_GIVEN,
    PATIENT_ID,
    SELECT,
    bearer,
    bundle,
    hook_request,
    jwks,
    key,
    lumbar_puncture,
    make_settings,
)
from tests.support.client import asgi_client

SECRETS = [
    PATIENT_ID,
    PATIENT_FAMILY,
    PATIENT_GIVEN,
    "MRN-55501234",
    "Lumbar puncture",
    "Post-dural puncture headache",
    "patient=",
]


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """The service's JSON log lines from the root logger (enter after create_app, which resets the
    root handlers)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def invalid_procedure() -> dict[str, object]:
    broken = lumbar_puncture()
    broken["id"] = "lp-broken"
    broken["performedDateTime"] = f"sometime around {PATIENT_GIVEN}'s birthday"
    return broken


@pytest.mark.anyio
async def test_logs_of_full_requests_carry_no_patient_data(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, log_level="DEBUG"), clock=lambda: NOW)

    with_skipped = hook_request()
    with_skipped["prefetch"]["procedures"] = bundle(invalid_procedure(), lumbar_puncture())
    with_fault = hook_request()
    del with_fault["prefetch"]["observations"]
    with_fault["fhirAuthorization"] = {
        "access_token": "fhir-secret-token-0042",
        "token_type": "Bearer",
        "scope": "patient/*.read",
        "subject": "cds-service",
    }
    ehr_token = bearer(SELECT)

    with respx.mock() as router, captured_logs() as captured:
        router.get(JWKS_URL).mock(return_value=httpx.Response(200, json=jwks(key("ES384"))))
        router.get(url__startswith=FHIR_BASE).mock(return_value=httpx.Response(503))
        async with asgi_client(app) as client:
            card = await client.post(SELECT, json=with_skipped, headers=ehr_token)
            fault = await client.post(SELECT, json=with_fault, headers=bearer(SELECT))
            replayed = await client.post(SELECT, json=with_skipped, headers=ehr_token)

    assert card.status_code == 200 and len(card.json()["cards"]) == 1
    assert fault.status_code == 412
    assert replayed.status_code == 401

    text = captured.getvalue()
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    names = {e["event"] for e in events}
    assert {"resource_skipped", "fhir_fetch_fault", "request", "auth_refused"} <= names
    assert with_skipped["hookInstance"] in text
    assert with_fault["hookInstance"] in text
    for secret in [*SECRETS, "fhir-secret-token-0042", ehr_token["Authorization"][7:]]:
        assert secret not in text, f"{secret!r} leaked into the logs"
