"""The hook endpoint's DirectRoute reads and validates its body itself: every bad body must get the
answer FastAPI's own body handling gives (same status, same error body), on the app's real error
handlers, and a good one the same call of the endpoint."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request, Response

from cds_service.api.errors import install_error_handlers
from cds_service.api.routing import CdsRoute, DirectRoute
from cds_service.wire import HookRequest


async def echo(service_id: str, body: HookRequest, request: Request) -> Response:
    return Response(f"{service_id}|{body.hook}|{body.context.patientId}|{request.method}")


def parity_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    router = APIRouter(route_class=CdsRoute)
    router.add_api_route("/fastapi/{service_id}", echo, methods=["POST"])
    router.add_api_route(
        "/direct/{service_id}", echo, methods=["POST"], route_class_override=DirectRoute
    )
    app.include_router(router)
    return app


GOOD = (
    b'{"hook":"order-select","hookInstance":"h","context":{"patientId":"p","selections":[],'
    b'"draftOrders":{"resourceType":"Bundle","entry":[]}}}'
)
JSON = {"content-type": "application/json"}
CASES: list[tuple[str, bytes, dict[str, str]]] = [
    ("good", GOOD, JSON),
    ("good, fhir+json", GOOD, {"content-type": "application/fhir+json; charset=utf-8"}),
    ("good, upper-case media type", GOOD, {"content-type": "Application/JSON"}),
    ("no content-type", GOOD, {}),
    ("text/plain", GOOD, {"content-type": "text/plain"}),
    ("form", b"a=1", {"content-type": "application/x-www-form-urlencoded"}),
    ("text/x+json", GOOD, {"content-type": "text/x+json"}),
    ("empty", b"", JSON),
    ("malformed", b'{"hook": "order-select",\n  "context": }', JSON),
    ("not an object", b"[1, 2]", JSON),
    ("null", b"null", JSON),
    ("missing fields", b'{"hook": "order-select"}', JSON),
    ("bad field types", b'{"hook": 5, "hookInstance": "", "context": {"patientId": 7}}', JSON),
    ("draftOrders not a Bundle", GOOD.replace(b'"Bundle"', b'"Patient"'), JSON),
    ("unrendered fixture", GOOD.replace(b'"h"', b'"{{now-48h}}"'), JSON),
    ("invalid UTF-8", b'{"hook": "\xff"}', JSON),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "body", "headers"), CASES, ids=[c[0] for c in CASES])
async def test_direct_route_answers_as_fastapi_does(
    name: str, body: bytes, headers: dict[str, str]
) -> None:
    transport = httpx.ASGITransport(app=parity_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        expected = await client.post("/fastapi/svc-1", content=body, headers=headers)
        direct = await client.post("/direct/svc-1", content=body, headers=headers)
    assert (direct.status_code, direct.content) == (expected.status_code, expected.content)
    if name.startswith("good"):
        assert direct.status_code == 200 and direct.text == "svc-1|order-select|p|POST"
    else:
        assert direct.status_code in (400, 415), direct.text
        error: dict[str, Any] = direct.json()
        assert error["error"] and error["message"]


def test_a_direct_route_needs_a_model_for_its_body() -> None:
    async def untyped(service_id: str, body: dict[str, Any], request: Request) -> Response:
        return Response()

    with pytest.raises(TypeError, match="pydantic model"):
        DirectRoute("/x/{service_id}", untyped, methods=["POST"])


def test_the_hook_endpoint_is_documented_with_its_request_model() -> None:
    from cds_service.api.app import create_app
    from tests.ops_helpers import settings_for

    app = create_app(settings_for("sqlite://"))
    operation = app.openapi()["paths"]["/cds-services/{service_id}"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/HookRequest"}
    assert "200" in operation["responses"] and "412" in operation["responses"]
