"""Compatibility with the public CDS Hooks sandbox: a request shaped like its PAMA imaging screen, the
system actions it reads from `response.extension.systemActions`, and prefetch templates it can fill."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cds_service.pipeline.pama import PAMA_EXTENSION
from cds_tools.fixtures import FIXTURES_DIR, load_fixture
from cds_tools.replay import compare, observed_outcome
from tests.conftest import NOW
from tests.support.builders import empty_values
from tests.support.client import asgi_client

SANDBOX_FIXTURE = FIXTURES_DIR / "sandbox-pama-ct-head-headache-after-epidural.json"
SERVICE = "pdph-imaging-order-select"
# The only tokens the sandbox substitutes in prefetch templates.
SANDBOX_PREFETCH_TOKENS = {"context.patientId", "context.userId", "user"}


def sandbox_rating(system_actions: list[dict[str, Any]]) -> list[dict[str, str]]:
    """What the sandbox's PAMA screen does with system actions: for each `update`, the first coding of
    the pama-rating extension is the rating it shows."""
    return [
        {
            "resourceId": a["resource"]["id"],
            "rating": e["valueCodeableConcept"]["coding"][0]["code"],
        }
        for a in system_actions
        if a["type"] == "update"
        for e in a["resource"].get("extension", [])
        if e["url"] == PAMA_EXTENSION
    ]


def test_the_fixture_keeps_the_sandbox_shape() -> None:
    request = load_fixture(SANDBOX_FIXTURE, NOW)["request"]
    bundle = request["context"]["draftOrders"]
    assert "type" not in bundle
    [entry] = bundle["entry"]
    assert "fullUrl" not in entry
    order = entry["resource"]
    assert order["intent"] == "plan"
    assert order["code"] == {
        "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "70450"}]
    }
    assert order["reasonCode"] == [
        {"coding": [{"system": "http://snomed.info/sct", "code": "25064002"}]}
    ]
    assert request["context"]["selections"] == ["ServiceRequest/example-request-id"]


@pytest.mark.anyio
async def test_sandbox_pama_request_end_to_end_with_extension_mirror(
    make_app: Callable[..., FastAPI],
) -> None:
    fixture = load_fixture(SANDBOX_FIXTURE, NOW)
    async with asgi_client(make_app(system_actions_in_extension=True)) as client:
        response = await client.post(f"/cds-services/{SERVICE}", json=fixture["request"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert compare(fixture["expected"], observed_outcome(body)) == []
    assert body["extension"]["systemActions"] == body["systemActions"]
    assert sandbox_rating(body["extension"]["systemActions"]) == [
        {"resourceId": "example-request-id", "rating": "not-appropriate"}
    ]
    assert empty_values(body) == []
    [card] = body["cards"]
    assert len(card["summary"]) < 140
    assert card["selectionBehavior"] == "at-most-one"
    assert all(reason.get("display") for reason in card["overrideReasons"])
    assert card["suggestions"][0]["actions"] == [
        {
            "type": "delete",
            "description": card["suggestions"][0]["actions"][0]["description"],
            "resourceId": "ServiceRequest/example-request-id",
        }
    ]


@pytest.mark.anyio
async def test_no_extension_mirror_by_default(make_app: Callable[..., FastAPI]) -> None:
    fixture = load_fixture(SANDBOX_FIXTURE, NOW)
    async with asgi_client(make_app()) as client:
        body = (await client.post(f"/cds-services/{SERVICE}", json=fixture["request"])).json()
    assert "extension" not in body
    assert sandbox_rating(body["systemActions"]) == [
        {"resourceId": "example-request-id", "rating": "not-appropriate"}
    ]


@pytest.mark.anyio
async def test_silent_answer_has_no_extension_even_with_the_mirror(
    make_app: Callable[..., FastAPI],
) -> None:
    fixture = load_fixture(FIXTURES_DIR / "non-imaging-order-is-silent.json", NOW)
    async with asgi_client(make_app(system_actions_in_extension=True)) as client:
        body = (await client.post(f"/cds-services/{SERVICE}", json=fixture["request"])).json()
    assert body == {"cards": []}


@pytest.mark.anyio
async def test_a_silent_imaging_order_records_no_criteria_apply(
    make_app: Callable[..., FastAPI],
) -> None:
    """SPEC §4: no scenario means `no-criteria-apply`, never `appropriate` by default."""
    fixture = load_fixture(FIXTURES_DIR / "child-is-silent.json", NOW)
    async with asgi_client(make_app(system_actions_in_extension=True)) as client:
        body = (await client.post(f"/cds-services/{SERVICE}", json=fixture["request"])).json()
    assert body["cards"] == []
    assert sandbox_rating(body["extension"]["systemActions"]) == [
        {"resourceId": "sr-mri-brain", "rating": "no-criteria-apply"}
    ]


@pytest.mark.anyio
async def test_discovery_prefetch_uses_only_tokens_the_sandbox_fills(
    client: httpx.AsyncClient,
) -> None:
    services = (await client.get("/cds-services")).json()["services"]
    assert {s["hook"] for s in services} == {"order-select", "order-sign"}
    for service in services:
        for template in service["prefetch"].values():
            tokens = set(re.findall(r"\{\{\s*([^}\s]+)\s*\}\}", template))
            assert tokens <= SANDBOX_PREFETCH_TOKENS, template


def test_one_setting_configures_the_sandbox() -> None:
    from cds_service.config import SANDBOX_FHIR_SERVERS, SANDBOX_ISSUER, SANDBOX_JWKS, Settings

    settings = Settings(profile="sandbox", cors_origins="https://ehr.example.org")
    assert settings.trusted_issuers[SANDBOX_ISSUER] == SANDBOX_JWKS
    assert settings.allowed_jku[SANDBOX_ISSUER] == [SANDBOX_JWKS]
    assert settings.fhir_servers[SANDBOX_ISSUER] == SANDBOX_FHIR_SERVERS
    assert settings.cors_origin_list() == ["https://ehr.example.org", SANDBOX_ISSUER]
    assert settings.system_actions_in_extension is True
    assert "ES384" in settings.auth_algorithms  # the sandbox signs ES384 on P-384
    plain = Settings()
    assert SANDBOX_ISSUER not in plain.trusted_issuers and not plain.system_actions_in_extension
