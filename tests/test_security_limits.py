"""Request body limit (413), with and without Content-Length, and hostile bodies that must end in a
4xx or a correct empty answer, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cds_service.wire import CdsResponse
from tests.security_helpers import (
    SELECT,
    SIGN,
    hook_request,
    mri_brain_order,
    open_settings,
)
from tests.support.client import app_client

LIMIT = 64 * 1024


async def chunks(total: int, size: int = 8192) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        part = min(size, total - sent)
        sent += part
        yield b" " * part


@pytest.mark.anyio
async def test_body_over_the_limit_with_content_length(tmp_path: Path) -> None:
    async with app_client(open_settings(tmp_path, max_body_bytes=LIMIT)) as client:
        response = await client.post(SELECT, content=b"{" + b" " * LIMIT + b"}")
    assert response.status_code == 413
    assert response.json()["error"] == "body-too-large"


@pytest.mark.anyio
async def test_chunked_body_over_the_limit(tmp_path: Path) -> None:
    async with app_client(open_settings(tmp_path, max_body_bytes=LIMIT)) as client:
        response = await client.post(
            SELECT, content=chunks(LIMIT * 4), headers={"Content-Type": "application/json"}
        )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["error"] == "body-too-large"


@pytest.mark.anyio
async def test_chunked_feedback_over_the_limit(tmp_path: Path) -> None:
    async with app_client(open_settings(tmp_path, max_body_bytes=LIMIT)) as client:
        response = await client.post(f"{SELECT}/feedback", content=chunks(LIMIT + 1))
    assert response.status_code == 413


@pytest.mark.anyio
async def test_body_under_the_limit_passes(tmp_path: Path) -> None:
    body = json.dumps(hook_request()).encode()
    async with app_client(open_settings(tmp_path, max_body_bytes=len(body))) as client:
        streamed = await client.post(
            SELECT, content=chunks(0), headers={"Content-Type": "application/json"}
        )
        response = await client.post(
            SELECT, content=body, headers={"Content-Type": "application/json"}
        )
    assert streamed.status_code == 400
    assert response.status_code == 200


@pytest.mark.anyio
@pytest.mark.parametrize("declared", ["abc", "-1", "1e9", "²"])
async def test_invalid_content_length(tmp_path: Path, declared: str) -> None:
    async with app_client(open_settings(tmp_path)) as client:
        response = await client.post(
            SELECT, content=b"{}", headers={"Content-Length": declared.encode("latin-1")}
        )
    assert response.status_code == 400


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def hostile_bodies() -> list[tuple[str, bytes]]:
    request = hook_request()
    cases: dict[str, Any] = {
        "not json": b"{hook: order-select",
        "empty": b"",
        "json null": b"null",
        "json list": b"[]",
        "deep list": nested(100_000).encode(),
        "deep object in context": json.dumps(request)
        .replace('"userId"', '"deep": ' + nested(5_000) + ', "userId"')
        .encode(),
        "deep prefetch": json.dumps(
            {**request, "prefetch": {"patient": json.loads(nested(500))}}
        ).encode(),
        "huge string": json.dumps({**request, "hookInstance": "x" * 1_000_000}).encode(),
        "many orders": json.dumps(
            hook_request(orders=[mri_brain_order(f"sr-{n}") for n in range(300)])
        ).encode(),
        "lone surrogate": json.dumps({**request, "hookInstance": "\ud800"}).encode(),
        "invalid utf-8": json.dumps(request).encode().replace(b"order-select", b"order-\xff\xfe"),
        "nul bytes": json.dumps({**request, "hookInstance": "a\u0000b"}).encode(),
        "wrong types": json.dumps(
            {"hook": 1, "hookInstance": [], "context": "x", "prefetch": 3}
        ).encode(),
        "draftOrders not a bundle": json.dumps(
            {
                **request,
                "context": {**request["context"], "draftOrders": {"resourceType": "Patient"}},
            }
        ).encode(),
        "draftOrders entry not a list": json.dumps(
            {
                **request,
                "context": {
                    **request["context"],
                    "draftOrders": {"resourceType": "Bundle", "entry": {"resource": {}}},
                },
            }
        ).encode(),
        "fhirServer not http": json.dumps({**request, "fhirServer": "file:///etc/passwd"}).encode(),
        "huge number": json.dumps(request)
        .replace('"prefetch"', '"n": 1' + "0" * 5000 + ', "prefetch"')
        .encode(),
        "NaN": json.dumps(request).replace('"prefetch"', '"n": NaN, "prefetch"').encode(),
    }
    return list(cases.items())


@pytest.mark.anyio
async def test_hostile_bodies_are_never_a_500(tmp_path: Path) -> None:
    async with app_client(open_settings(tmp_path)) as client:
        for name, body in hostile_bodies():
            for path in (SELECT, SIGN, f"{SELECT}/feedback"):
                response = await client.post(
                    path, content=body, headers={"Content-Type": "application/json"}
                )
                assert response.status_code < 500, (name, path, response.text[:300])
                if response.status_code == 200 and not path.endswith("feedback"):
                    CdsResponse.model_validate(response.json())
                else:
                    assert {"error", "message"} <= set(response.json()), (name, path)


@pytest.mark.anyio
async def test_selections_pointing_to_missing_orders_is_an_empty_answer(tmp_path: Path) -> None:
    request = hook_request()
    request["context"]["selections"] = ["ServiceRequest/does-not-exist"]
    async with app_client(open_settings(tmp_path)) as client:
        response = await client.post(SELECT, json=request)
    assert response.status_code == 200
    assert response.json() == {"cards": []}


@pytest.mark.anyio
async def test_duplicated_order_ids_never_repeat_cards(tmp_path: Path) -> None:
    request = hook_request("order-sign", orders=[mri_brain_order("sr-1"), mri_brain_order("sr-1")])
    async with app_client(open_settings(tmp_path)) as client:
        response = await client.post(SIGN, json=request)
    assert response.status_code < 500
    if response.status_code == 200:
        cards = CdsResponse.model_validate(response.json()).cards
        summaries = [c.summary for c in cards]
        assert len(summaries) == len(set(summaries))
        assert len(cards) <= 1


@pytest.mark.anyio
async def test_duplicated_resource_ids_in_prefetch(tmp_path: Path) -> None:
    request = hook_request()
    procedures = request["prefetch"]["procedures"]
    procedures["entry"] = procedures["entry"] * 3
    conditions = request["prefetch"]["conditions"]
    conditions["entry"] = conditions["entry"] * 3
    async with app_client(open_settings(tmp_path)) as client:
        response = await client.post(SELECT, json=request)
    assert response.status_code == 200
    assert len(response.json()["cards"]) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
async def test_feedback_timestamp_without_utc_equivalent(tmp_path: Path, timestamp: str) -> None:
    item = {"card": "c-1", "outcome": "accepted", "outcomeTimestamp": timestamp}
    async with app_client(open_settings(tmp_path)) as client:
        response = await client.post(f"{SELECT}/feedback", json={"feedback": [item]})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid-request"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "when", ["9999-12-31", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "0001"]
)
async def test_dates_without_a_utc_instant_are_not_a_500(tmp_path: Path, when: str) -> None:
    request = hook_request()
    request["prefetch"]["conditions"]["entry"][0]["resource"]["onsetDateTime"] = when
    request["prefetch"]["procedures"]["entry"][0]["resource"]["performedDateTime"] = when
    request["prefetch"]["patient"]["birthDate"] = when[:10]
    async with app_client(open_settings(tmp_path)) as client:
        response = await client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    CdsResponse.model_validate(response.json())


@pytest.mark.anyio
@pytest.mark.parametrize("junk", [True, 5, "62270", {"code": "62270"}, [None, 1]])
async def test_wrong_types_inside_prefetch_resources(tmp_path: Path, junk: Any) -> None:
    """Resources are filtered on their raw codes before validation: junk there is not a 500."""
    request = hook_request()
    for key in ("procedures", "conditions"):
        extra = json.loads(json.dumps(request["prefetch"][key]["entry"][0]["resource"]))
        extra["id"] = "junk"
        extra["code"] = {"coding": junk, "text": junk}
        extra["status"] = junk
        request["prefetch"][key]["entry"].append({"resource": extra})
    observation = {"resourceType": "Observation", "status": junk, "code": {"coding": junk}}
    observation["valueQuantity"] = junk
    request["prefetch"]["observations"]["entry"].append({"resource": observation})
    async with app_client(open_settings(tmp_path)) as client:
        response = await client.post(SELECT, json=request)
    assert response.status_code == 200, response.text
    assert len(response.json()["cards"]) == 1
