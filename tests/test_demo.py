"""The demo routes through the ASGI app: when they are served, what they serve, and that the page
loads nothing from another origin."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi import FastAPI

from cds_service.config import Settings
from cds_tools.demo import STATIC_DIR, demo_enabled
from cds_tools.fixtures import fixture_paths
from tests.conftest import NOW
from tests.demo_helpers import without_auth
from tests.support.client import asgi_client

DEMO_URLS = ["/demo", "/demo/assets/demo.js", "/demo/fixtures", "/demo/fixtures/child-is-silent"]


def test_demo_is_on_by_default_only_while_auth_is_off(settings: Settings) -> None:
    assert demo_enabled(settings.model_copy(update={"demo_enabled": None, "auth_required": False}))
    assert not demo_enabled(
        settings.model_copy(update={"demo_enabled": None, "auth_required": True})
    )
    assert demo_enabled(settings.model_copy(update={"demo_enabled": True, "auth_required": True}))
    assert not demo_enabled(without_auth(settings, demo_enabled=False))


def test_demo_enabled_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDS_DEMO_ENABLED", "false")
    assert Settings().demo_enabled is False


@pytest.mark.anyio
@pytest.mark.parametrize("url", DEMO_URLS)
async def test_disabled_demo_answers_404(make_app: Callable[..., FastAPI], url: str) -> None:
    async with asgi_client(make_app(demo_enabled=False)) as client:
        response = await client.get(url)
    assert response.status_code == 404
    assert response.json()["error"] == "not-found"


@pytest.mark.anyio
@pytest.mark.parametrize("url", DEMO_URLS)
async def test_enabled_demo_serves(make_app: Callable[..., FastAPI], url: str) -> None:
    async with asgi_client(make_app(demo_enabled=True)) as client:
        response = await client.get(url)
    assert response.status_code == 200


@pytest.mark.anyio
async def test_page_and_assets_are_same_origin_only(make_app: Callable[..., FastAPI]) -> None:
    async with asgi_client(make_app(demo_enabled=True)) as client:
        page = await client.get("/demo")
        script = await client.get("/demo/assets/demo.js")
        style = await client.get("/demo/assets/demo.css")
    assert page.headers["content-type"].startswith("text/html")
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.headers["content-type"].startswith("text/css")
    for response in (page, script, style):
        assert "default-src 'self'" in response.headers["content-security-policy"]
    files = {path.name: path.read_text(encoding="utf-8") for path in STATIC_DIR.iterdir()}
    assert set(files) == {"index.html", "demo.js", "markdown.js", "demo.css"}
    remote = re.compile(
        r"""(?:src|href)\s*=\s*["'](?:https?:)?//|(?:import|fetch)\s*\(?\s*["'`](?:https?:)?//|@import|url\(\s*["']?(?:https?:)?//"""
    )
    for name, text in files.items():
        assert not remote.search(text), f"{name} loads something from another origin"
    assert "<script>" not in files["index.html"]  # no inline script: the CSP forbids it


@pytest.mark.anyio
@pytest.mark.parametrize(
    "name", ["..%2Fdemo.py", "index.html", "nope.js", "..%2F..%2Fpyproject.toml"]
)
async def test_assets_outside_the_allow_list_are_404(
    make_app: Callable[..., FastAPI], name: str
) -> None:
    async with asgi_client(make_app(demo_enabled=True)) as client:
        response = await client.get(f"/demo/assets/{name}")
    assert response.status_code == 404


@pytest.mark.anyio
async def test_fixture_list_names_every_fixture(make_app: Callable[..., FastAPI]) -> None:
    async with asgi_client(make_app(demo_enabled=True)) as client:
        listed = (await client.get("/demo/fixtures")).json()["fixtures"]
    assert [f["name"] for f in listed] == [p.stem for p in fixture_paths()]
    for fixture in listed:
        assert set(fixture) == {"name", "title", "story", "service", "expected"}


@pytest.mark.anyio
async def test_fixture_request_is_rendered_at_the_service_clock(
    make_app: Callable[..., FastAPI],
) -> None:
    async with asgi_client(make_app(demo_enabled=True)) as client:
        fixture = (await client.get("/demo/fixtures/seed-persistent-45f-4-days-after-lp")).json()
        missing = await client.get("/demo/fixtures/no-such-fixture")
    assert "{{" not in json.dumps(fixture["request"])
    procedure = fixture["request"]["prefetch"]["procedures"]["entry"][0]["resource"]
    expected = (NOW - timedelta(hours=96)).isoformat().replace("+00:00", "Z")
    assert procedure["performedDateTime"] == expected
    assert missing.status_code == 404


@pytest.mark.anyio
async def test_demo_routes_stay_out_of_the_openapi_document(
    make_app: Callable[..., FastAPI],
) -> None:
    async with asgi_client(make_app(demo_enabled=True)) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith("/demo")]
