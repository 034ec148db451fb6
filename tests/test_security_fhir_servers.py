"""Registered FHIR servers (SPEC §5): the EHR's access token goes only to a FHIR server registered for
the calling issuer; any other fhirServer is refused before a request is sent, logged and counted."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx

from cds_service.security.fhir_servers import REFUSED
from tests.security_helpers import (
    FHIR_BASE,
    JWKS_URL,
    SELECT,
    bearer,
    healthy_fhir_answer,
    hook_request,
    jwks,
    key,
    make_settings,
    open_settings,
)
from tests.support.client import app_client

ROGUE = "https://attacker.example.net/fhir"


def without_observations(server: str) -> dict[str, object]:
    request = hook_request(fhirServer=server)
    del request["prefetch"]["observations"]  # so the service must query the FHIR server
    request["fhirAuthorization"] = {"access_token": "ehr-access-token-77", "token_type": "Bearer"}
    return request


@pytest.mark.anyio
async def test_only_the_registered_server_receives_the_token(tmp_path: Path) -> None:
    with respx.mock(assert_all_called=False) as router:
        router.get(JWKS_URL).mock(return_value=httpx.Response(200, json=jwks(key("ES384"))))
        registered = router.get(url__startswith=FHIR_BASE).mock(side_effect=healthy_fhir_answer)
        rogue = router.get(url__startswith=ROGUE).mock(side_effect=healthy_fhir_answer)
        before = REFUSED._value.get()
        async with app_client(make_settings(tmp_path)) as client:
            ok = await client.post(
                SELECT, json=without_observations(FHIR_BASE), headers=bearer(SELECT)
            )
            refused = await client.post(
                SELECT, json=without_observations(ROGUE), headers=bearer(SELECT)
            )
    assert ok.status_code == 200
    assert registered.called
    assert registered.calls[0].request.headers["authorization"] == "Bearer ehr-access-token-77"
    assert refused.status_code == 403
    assert refused.json()["error"] == "fhir-server-not-registered"
    assert "details" in refused.json()
    assert not rogue.called, "no request, and so no token, may reach an unregistered server"
    assert REFUSED._value.get() == before + 1


@pytest.mark.anyio
async def test_a_complete_prefetch_needs_no_registered_server(tmp_path: Path) -> None:
    request = hook_request(fhirServer=ROGUE)
    with respx.mock(assert_all_called=False) as router:
        router.get(JWKS_URL).mock(return_value=httpx.Response(200, json=jwks(key("ES384"))))
        rogue = router.get(url__startswith=ROGUE).mock(side_effect=healthy_fhir_answer)
        async with app_client(make_settings(tmp_path)) as client:
            response = await client.post(SELECT, json=request, headers=bearer(SELECT))
    assert response.status_code == 200 and response.json()["cards"]
    assert not rogue.called


@pytest.mark.anyio
@pytest.mark.parametrize(("allowed", "status"), [(["*"], 200), ([FHIR_BASE], 403), ([], 403)])
async def test_local_setting_governs_with_auth_off(
    tmp_path: Path, allowed: list[str], status: int
) -> None:
    with respx.mock(assert_all_called=False) as router:
        rogue = router.get(url__startswith=ROGUE).mock(side_effect=healthy_fhir_answer)
        async with app_client(open_settings(tmp_path, local_fhir_servers=allowed)) as client:
            response = await client.post(SELECT, json=without_observations(ROGUE))
    assert response.status_code == status
    assert rogue.called is (status == 200)
