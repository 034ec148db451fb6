"""CORS for browser-based EHRs and the CDS Hooks sandbox: preflights need no token, every answer
(401s included) carries the CORS headers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx

from tests.security_helpers import (
    JWKS_URL,
    SELECT,
    bearer,
    hook_request,
    jwks,
    key,
    make_settings,
)
from tests.support.client import app_client

ORIGIN = "https://sandbox.cds-hooks.org"
PATHS = ["/cds-services", SELECT, f"{SELECT}/feedback"]


def preflight(method: str) -> dict[str, str]:
    return {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


@pytest.mark.anyio
@pytest.mark.parametrize("path", PATHS)
async def test_preflight_needs_no_token_and_allows_auth_headers(tmp_path: Path, path: str) -> None:
    method = "GET" if path == "/cds-services" else "POST"
    async with app_client(make_settings(tmp_path)) as client:
        response = await client.options(path, headers=preflight(method))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert method in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed


@pytest.mark.anyio
async def test_a_browser_harness_may_mark_its_calls_as_tests(tmp_path: Path) -> None:
    """The go-live traffic mark (docs/go-live.md) passes a preflight, so a test harness in a browser
    on another origin can keep its calls out of the firing report."""
    headers = preflight("POST") | {
        "Access-Control-Request-Headers": "authorization, content-type, x-cds-traffic"
    }
    async with app_client(make_settings(tmp_path)) as client:
        response = await client.options(SELECT, headers=headers)
    assert response.status_code == 200
    assert "x-cds-traffic" in response.headers["access-control-allow-headers"].lower()


@pytest.mark.anyio
async def test_get_and_post_answers_carry_cors_headers(tmp_path: Path) -> None:
    with respx.mock() as router:
        router.get(JWKS_URL).mock(return_value=httpx.Response(200, json=jwks(key("ES384"))))
        async with app_client(make_settings(tmp_path)) as client:
            get = await client.get(
                "/cds-services", headers={"Origin": ORIGIN, **bearer("/cds-services")}
            )
            post = await client.post(
                SELECT, json=hook_request(), headers={"Origin": ORIGIN, **bearer(SELECT)}
            )
            refused = await client.get("/cds-services", headers={"Origin": ORIGIN})
    assert get.status_code == 200
    assert post.status_code == 200
    assert refused.status_code == 401
    for response in (get, post, refused):
        assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.anyio
async def test_configured_origins_only(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, auth_required=False, cors_origins=f"{ORIGIN}, https://ehr.example.org"
    )
    async with app_client(settings) as client:
        allowed = await client.options("/cds-services", headers=preflight("GET"))
        other = await client.options(
            "/cds-services", headers={**preflight("GET"), "Origin": "https://evil.example.com"}
        )
        simple = await client.get("/cds-services", headers={"Origin": ORIGIN})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    assert simple.headers["access-control-allow-origin"] == ORIGIN


def test_origins_setting_accepts_a_json_list(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, cors_origins='["https://a.example", "https://b.example"]')
    assert settings.cors_origin_list() == ["https://a.example", "https://b.example"]
    assert make_settings(tmp_path).cors_origin_list() == ["*"]
