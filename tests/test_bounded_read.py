"""Reading responses of servers the service does not control within caps (cds_service/bounded_read.py)
and the FHIR client's per-call caps, with respx standing in for the server. The same against a real
misbehaving server and a real uvicorn worker: tests/test_hostile_fhir.py."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from cds_service.bounded_read import (
    STEP_BYTES,
    is_json_media_type,
    parse_json,
    read_body,
)
from cds_service.errors import DataUnavailable, ResponseRefused
from cds_service.observability.metrics import FETCH_LIMITS
from cds_service.pipeline.fhir_client import (
    CallAllowance,
    FetchLimits,
    FhirClient,
    fetch_limits,
)
from cds_service.pipeline.resolve import resolve
from cds_service.wire import HookRequest
from tests import security_helpers
from tests.security_helpers import (
    bundle,
    lumbar_puncture,
    open_settings,
    patient,
    pdph_condition,
)
from tests.support.builders import MRI_BRAIN_WWO, hook_request, service_request
from tests.support.client import app_client

URL = "https://fhir.example.org/r4/Observation"
MB = 1024 * 1024


async def read(response: httpx.Response, max_bytes: int, **kwargs: Any) -> bytearray:
    # httpx's MockTransport hands the body over as sent (respx would read and decode it first).
    transport = httpx.MockTransport(lambda _: response)
    async with (
        httpx.AsyncClient(transport=transport) as client,
        client.stream("GET", URL) as streaming,
    ):
        return await read_body(streaming, max_bytes, **kwargs)


def encoded(wire: bytes, encoding: str) -> httpx.Response:
    """A response whose body is `wire` as sent (httpx.Response(content=...) would decode it)."""
    return httpx.Response(
        200, stream=httpx.ByteStream(wire), headers={"Content-Encoding": encoding}
    )


def bomb(inflated: int, wbits: int = zlib.MAX_WBITS | 16) -> bytes:
    deflate = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = b" " * MB
    parts = [deflate.compress(block) for _ in range(inflated // MB)]
    return b"".join(parts) + deflate.flush()


@pytest.mark.anyio
async def test_a_body_within_the_cap_is_returned_whole() -> None:
    body = json.dumps({"resourceType": "Bundle", "entry": []}).encode()
    assert await read(httpx.Response(200, stream=httpx.ByteStream(body)), 1024) == body


@pytest.mark.anyio
@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
async def test_compressed_bodies_are_inflated(encoding: str) -> None:
    body = json.dumps({"resourceType": "Patient", "note": "x" * 300_000}).encode()
    if encoding == "gzip":
        wire = gzip.compress(body)
    elif encoding == "deflate":
        wire = zlib.compress(body)
    else:
        raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        wire = raw.compress(body) + raw.flush()
    header = "gzip" if encoding == "gzip" else "deflate"
    assert await read(encoded(wire, header), MB) == body


@pytest.mark.anyio
async def test_a_gzip_bomb_is_stopped_at_the_cap_in_bounded_steps() -> None:
    pieces: list[int] = []
    wire = bomb(64 * MB)  # about 64 KB on the wire
    assert len(wire) < 100_000
    with pytest.raises(ResponseRefused) as refused:
        await read(encoded(wire, "gzip"), 2 * MB, check=lambda piece: pieces.append(len(piece)))
    assert refused.value.cause == "response-too-large"
    assert max(pieces) <= STEP_BYTES
    assert sum(pieces) <= 2 * MB  # never more than the cap inflated and kept


@pytest.mark.anyio
async def test_an_announced_length_over_the_cap_is_refused_before_reading() -> None:
    async def never_read() -> AsyncIterator[bytes]:
        raise AssertionError("the body was read")
        yield b""  # pragma: no cover

    response = httpx.Response(200, headers={"Content-Length": str(300 * MB)}, content=never_read())
    with pytest.raises(ResponseRefused) as refused:
        await read(response, 16 * MB)
    assert refused.value.cause == "response-too-large"


@pytest.mark.anyio
async def test_a_body_already_in_memory_has_the_same_caps() -> None:
    """A transport that hands over a read response (httpx's MockTransport) is capped all the same."""
    assert await read(httpx.Response(200, content=b"x" * 1000), 1000) == b"x" * 1000
    with pytest.raises(ResponseRefused):
        await read(httpx.Response(200, content=b"x" * 1001), 1000)


@pytest.mark.anyio
async def test_a_body_without_length_is_abandoned_at_the_cap() -> None:
    sent: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            sent.append(64 * 1024)
            yield b"x" * (64 * 1024)

    with pytest.raises(ResponseRefused):
        await read(httpx.Response(200, content=endless()), MB)
    assert sum(sent) <= MB + 64 * 1024


@pytest.mark.anyio
@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, gzip", "compress"])
async def test_encodings_that_cannot_be_inflated_in_steps_are_refused(encoding: str) -> None:
    with pytest.raises(ResponseRefused) as refused:
        await read(encoded(b"\x00" * 10, encoding), MB)
    assert refused.value.cause == "unsupported-encoding"


@pytest.mark.anyio
async def test_corrupt_gzip_is_refused() -> None:
    with pytest.raises(ResponseRefused) as refused:
        await read(encoded(b"not gzip", "gzip"), MB)
    assert refused.value.cause == "invalid-encoding"


@pytest.mark.anyio
async def test_parse_json_small_large_and_hostile() -> None:
    small = {"resourceType": "Patient", "id": "p"}
    assert await parse_json(json.dumps(small).encode()) == small
    large = {"resourceType": "Bundle", "entry": [{"resource": small}] * 20_000}
    assert await parse_json(json.dumps(large).encode()) == large  # in a worker thread
    for hostile in (b"[" * 200_000 + b"]" * 200_000, b"<html>", b"\xff\xfe{}"):
        with pytest.raises(ResponseRefused) as refused:
            await parse_json(hostile)
        assert refused.value.cause == "invalid-json"


@pytest.mark.parametrize(
    ("content_type", "json_like"),
    [
        (None, True),
        ("application/fhir+json;charset=UTF-8", True),
        ("application/json", True),
        ("application/json+fhir", True),
        ("Application/JSON; charset=utf-8", True),
        ("text/html; charset=utf-8", False),
        ("application/fhir+xml", False),
        ("application/octet-stream", False),
        ("text/plain", False),
    ],
)
def test_json_media_types(content_type: str | None, json_like: bool) -> None:
    assert is_json_media_type(content_type) is json_like


def test_resources_are_counted_across_piece_boundaries() -> None:
    allowance = CallAllowance(FetchLimits(call_resources=3))
    check = allowance.response_check()
    text = b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient"}}]}'
    for i in range(len(text)):  # one byte at a time: every split of the key is met
        check(text[i : i + 1])
    assert allowance.resources_left == 1
    other = allowance.response_check()  # another response of the same call
    other(b'{"resourceType":"Patient"}')
    with pytest.raises(ResponseRefused) as refused:
        other(b'{"resourceType":"Patient"}')
    assert refused.value.cause == "too-many-resources"


def test_an_escaped_key_in_a_string_is_not_a_resource() -> None:
    allowance = CallAllowance(FetchLimits(call_resources=1))
    allowance.response_check()(b'{"resourceType":"Observation","note":"\\"resourceType\\""}')
    assert allowance.resources_left == 0


# --- the FHIR client's caps through resolve -----------------------------------------------------

BASE = "https://ehr.example.org/fhir"
TEMPLATES = {
    "patient": "Patient/{{context.patientId}}",
    "procedures": "Procedure?patient={{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
}


def request_without_prefetch() -> HookRequest:
    raw = hook_request([service_request("sr-1", MRI_BRAIN_WWO)], prefetch={})
    raw.pop("prefetch")
    raw["fhirServer"] = BASE
    return HookRequest.model_validate(raw)


def searchset(count: int, note: str = "") -> dict[str, Any]:
    entry = {"resource": {"resourceType": "Procedure", "status": "completed", "note": note}}
    return {"resourceType": "Bundle", "entry": [entry] * count}


@pytest.mark.anyio
@respx.mock
async def test_the_call_cap_counts_every_query_together() -> None:
    respx.get(f"{BASE}/Patient/pat-1").respond(json={"resourceType": "Patient", "id": "pat-1"})
    respx.get(url__startswith=f"{BASE}/Procedure").respond(json=searchset(1, "x" * 600_000))
    respx.get(url__startswith=f"{BASE}/Condition").respond(json=searchset(1, "y" * 600_000))
    refusals = FETCH_LIMITS.labels("fhir", "call-too-large")
    before = refusals._value.get()
    limits = FetchLimits(response_bytes=MB, call_bytes=MB)  # each answer fits, not both
    async with FhirClient(fetch_limits=limits) as client:
        with pytest.raises(DataUnavailable) as failure:
            await resolve(request_without_prefetch(), TEMPLATES, client, timeout_s=2, max_pages=5)
    assert set(failure.value.missing.values()) == {"call-too-large"}
    assert len(failure.value.missing) == 1  # the answer that passed the cap; the other arrived
    assert refusals._value.get() == before + 1


@pytest.mark.anyio
@respx.mock
async def test_the_resource_cap_counts_pages_and_queries_together() -> None:
    respx.get(f"{BASE}/Patient/pat-1").respond(json={"resourceType": "Patient", "id": "pat-1"})
    respx.get(url__startswith=f"{BASE}/Procedure").respond(json=searchset(40))
    respx.get(url__startswith=f"{BASE}/Condition").respond(json=searchset(40))
    async with FhirClient(fetch_limits=FetchLimits(call_resources=60)) as client:
        with pytest.raises(DataUnavailable) as failure:
            await resolve(request_without_prefetch(), TEMPLATES, client, timeout_s=2, max_pages=5)
    assert list(failure.value.missing.values()) == ["too-many-resources"]


@pytest.mark.anyio
async def test_a_plain_httpx_client_has_the_default_caps() -> None:
    async with httpx.AsyncClient() as plain:
        assert fetch_limits(plain) == FetchLimits()


@pytest.mark.anyio
@respx.mock
async def test_an_optional_key_over_a_cap_is_omitted_and_the_call_decides(
    tmp_path: Path,
) -> None:
    """The declared failure policy: imaging history is optional, so a refused answer is left out."""
    fhir = "https://fhir.example.org/r4"
    huge_report = {"resourceType": "DiagnosticReport", "conclusion": "z" * (2 * MB)}
    answers = {
        "/r4/Patient": patient(),
        "/r4/Procedure": bundle(lumbar_puncture()),
        "/r4/Condition": bundle(pdph_condition()),
        "/r4/DiagnosticReport": bundle(huge_report),
    }

    def answer(request: httpx.Request) -> httpx.Response:
        for prefix, body in answers.items():
            if request.url.path.startswith(prefix):
                return httpx.Response(200, json=body)
        return httpx.Response(200, json=bundle())

    respx.get(url__startswith=fhir).mock(side_effect=answer)
    settings = open_settings(tmp_path, fhir_max_response_bytes=MB)
    async with app_client(settings) as client:
        response = await client.post(
            "/cds-services/pdph-imaging-order-select",
            json=security_helpers.hook_request(prefetch={}, fhirServer=fhir),
        )
    assert response.status_code == 200
    assert response.json()["cards"]
