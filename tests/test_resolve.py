"""Data resolution: prefetch first, else the FHIR server (respx stands in for it)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import respx

from cds_service.errors import DataUnavailable
from cds_service.pipeline.resolve import (
    prefetch_resources,
    render_template,
    resolve,
)
from cds_service.tls import client_tls
from cds_service.wire import HookRequest
from tests.support.builders import (
    MRI_BRAIN_WWO,
    bundle,
    hook_request,
    lumbar_puncture,
    patient,
    pdph,
    service_request,
)

BASE = "https://ehr.example.org/fhir"
TEMPLATES = {
    "patient": "Patient/{{context.patientId}}",
    "procedures": "Procedure?patient={{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
}


def request_without_prefetch(**extra: Any) -> HookRequest:
    raw = hook_request([service_request("sr-1", MRI_BRAIN_WWO)], prefetch={})
    raw.pop("prefetch")
    raw["fhirServer"] = BASE
    raw.update(extra)
    return HookRequest.model_validate(raw)


def test_prefetch_values() -> None:
    assert prefetch_resources(None) == []
    assert prefetch_resources({"resourceType": "OperationOutcome"}) is None
    assert prefetch_resources({"resourceType": "Patient", "id": "p"}) == [
        {"resourceType": "Patient", "id": "p"}
    ]
    assert prefetch_resources(
        {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "X"}}, 5, {}]}
    ) == [{"resourceType": "X"}]
    assert prefetch_resources("junk") is None


def test_render_template() -> None:
    request = request_without_prefetch()
    assert (
        render_template("Procedure?patient={{context.patientId}}", request)
        == "Procedure?patient=pat-1"
    )
    assert render_template("Practitioner/{{userPractitionerId}}", request) == "Practitioner/1"
    assert render_template("Encounter/{{context.encounterId}}", request) is None


@pytest.mark.anyio
@respx.mock
async def test_fetches_missing_keys_with_bearer_token_and_follows_pages() -> None:
    patient_route = respx.get(f"{BASE}/Patient/pat-1").respond(json=patient())
    page2 = f"{BASE}/Procedure?patient=pat-1&page=2"
    procedures = respx.get(f"{BASE}/Procedure", params={"patient": "pat-1"})
    procedures.side_effect = [
        httpx.Response(
            200, json=bundle([lumbar_puncture(30)]) | {"link": [{"relation": "next", "url": page2}]}
        ),
        httpx.Response(200, json=bundle([lumbar_puncture(300)])),
    ]
    request = request_without_prefetch(
        fhirAuthorization={
            "access_token": "secret-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "x",
            "subject": "s",
        },
        prefetch={
            "conditions": bundle([pdph()]),
            "procedures": {"resourceType": "OperationOutcome"},
        },
    )
    async with httpx.AsyncClient(verify=client_tls()) as client:
        data = await resolve(request, TEMPLATES, client, timeout_s=2, max_pages=5)
    assert len(data.resources["procedures"]) == 2
    assert data.resources["patient"][0]["id"] == "pat-1"
    assert len(data.resources["conditions"]) == 1
    assert sorted(data.fetched) == ["patient", "procedures"]
    assert patient_route.calls.last.request.headers["Authorization"] == "Bearer secret-token"


@pytest.mark.anyio
@respx.mock
async def test_no_token_when_no_authorization() -> None:
    route = respx.get(f"{BASE}/Patient/pat-1").respond(json=patient())
    request = request_without_prefetch(prefetch={"procedures": None, "conditions": None})
    async with httpx.AsyncClient(verify=client_tls()) as client:
        data = await resolve(request, TEMPLATES, client, timeout_s=2, max_pages=5)
    assert "Authorization" not in route.calls.last.request.headers
    assert data.resources["procedures"] == []  # null prefetch means "no data", not "fetch it"


@pytest.mark.anyio
@respx.mock
@pytest.mark.parametrize(
    ("response", "cause"),
    [
        (httpx.Response(500), "http-500"),
        (httpx.Response(401), "http-401"),
        (httpx.Response(200, text="<html>login</html>"), "wrong-content-type"),
        (
            httpx.Response(
                200, content=b"<html>login</html>", headers={"Content-Type": "application/json"}
            ),
            "invalid-json",
        ),
        (httpx.Response(200, json={"resourceType": "OperationOutcome"}), "operation-outcome"),
        (httpx.Response(200, json=[1, 2]), "not-fhir"),
        (httpx.ConnectTimeout("slow"), "timeout"),
        (httpx.ConnectError("refused"), "connection-error"),
    ],
)
async def test_fetch_failures_are_reported(response: Any, cause: str) -> None:
    route = respx.get(f"{BASE}/Patient/pat-1")
    if isinstance(response, Exception):
        route.side_effect = response
    else:
        route.mock(return_value=response)
    request = request_without_prefetch(prefetch={"procedures": None, "conditions": None})
    async with httpx.AsyncClient(verify=client_tls()) as client:
        with pytest.raises(DataUnavailable) as failure:
            await resolve(request, TEMPLATES, client, timeout_s=2, max_pages=5)
    assert failure.value.missing == {"patient": cause}


@pytest.mark.anyio
@respx.mock
async def test_endless_paging_is_bounded_and_other_origins_refused() -> None:
    def endless(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "0"))
        following = {"relation": "next", "url": f"{BASE}/Procedure?page={page + 1}"}
        return httpx.Response(200, json=bundle([]) | {"link": [following]})

    respx.get(url__startswith=f"{BASE}/Procedure").mock(side_effect=endless)
    elsewhere = bundle([]) | {
        "link": [{"relation": "next", "url": "https://evil.example.com/steal"}]
    }
    respx.get(url__startswith=f"{BASE}/Condition").respond(json=elsewhere)
    looping = bundle([]) | {"link": [{"relation": "next", "url": f"{BASE}/Observation?p=1"}]}
    respx.get(url__startswith=f"{BASE}/Observation").respond(json=looping)
    respx.get(f"{BASE}/Patient/pat-1").respond(json=patient())
    request = request_without_prefetch()
    templates = TEMPLATES | {"observations": "Observation?patient={{context.patientId}}"}
    async with httpx.AsyncClient(verify=client_tls()) as client:
        with pytest.raises(DataUnavailable) as failure:
            await resolve(request, templates, client, timeout_s=2, max_pages=3)
    assert failure.value.missing == {
        "procedures": "too-many-pages",
        "conditions": "next-link-other-origin",
        "observations": "next-link-loop",
    }


@pytest.mark.anyio
@respx.mock
async def test_what_arrived_within_the_budget_is_used() -> None:
    """A query still running when the time budget ends is a timeout; the others' answers are used
    (an optional key's slow server no longer costs the whole call its data)."""

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json=bundle([]))

    respx.get(f"{BASE}/Patient/pat-1").respond(json=patient())
    respx.get(url__startswith=f"{BASE}/Procedure").respond(json=bundle([lumbar_puncture(30)]))
    respx.get(url__startswith=f"{BASE}/Condition").mock(side_effect=slow)
    request = request_without_prefetch()
    async with httpx.AsyncClient(verify=client_tls()) as client:
        data = await resolve(
            request,
            TEMPLATES,
            client,
            timeout_s=0.3,
            max_pages=3,
            optional=frozenset({"conditions"}),
        )
        with pytest.raises(DataUnavailable) as failure:
            await resolve(request, TEMPLATES, client, timeout_s=0.3, max_pages=3)
    assert set(data.resources) == {"patient", "procedures"}
    assert data.fetched == ["patient", "procedures"]
    assert failure.value.missing == {"conditions": "timeout"}


@pytest.mark.anyio
async def test_no_prefetch_and_no_fhir_server() -> None:
    request = request_without_prefetch(fhirServer=None)
    async with httpx.AsyncClient(verify=client_tls()) as client:
        with pytest.raises(DataUnavailable) as failure:
            await resolve(request, TEMPLATES, client, timeout_s=2, max_pages=3)
    assert set(failure.value.missing.values()) == {"no-prefetch-and-no-fhirServer"}
