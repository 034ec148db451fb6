"""The HTTP interface (SPEC §4, §5): discovery, hook calls, errors in the CDS Hooks style, feedback."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import respx

from cds_service.api.deps import runtime_of
from cds_service.knowledge import Knowledge
from tests.conftest import fixture
from tests.ops_helpers import metric
from tests.support.builders import (
    MRI_BRAIN_WWO,
    bundle,
    hook_request,
    lumbar_puncture,
    pdph,
    service_request,
)

SELECT = "/cds-services/pdph-imaging-order-select"
SIGN = "/cds-services/pdph-imaging-order-sign"


@pytest.mark.anyio
async def test_discovery(client: httpx.AsyncClient) -> None:
    response = await client.get("/cds-services")
    assert response.status_code == 200
    services = {s["id"]: s for s in response.json()["services"]}
    assert services["pdph-imaging-order-select"]["hook"] == "order-select"
    assert services["pdph-imaging-order-sign"]["hook"] == "order-sign"
    for service in services.values():
        assert service["title"] and service["description"]
        resource_types = {t.split("?")[0].split("/")[0] for t in service["prefetch"].values()}
        assert resource_types == {
            "Patient",
            "Procedure",
            "Condition",
            "Observation",
            "DiagnosticReport",
            "ImagingStudy",
        }
        # CDS Hooks 2.0 prefetch restrictions: only the patient token and plain token/category
        # search parameters, which every EHR supports.
        for template in service["prefetch"].values():
            query = template.split("?", 1)[1] if "?" in template else ""
            params = {pair.split("=")[0] for pair in query.split("&") if pair}
            assert params <= {"patient", "category"}, template
        assert all("{{context.patientId}}" in t for t in service["prefetch"].values())


@pytest.mark.anyio
async def test_seed_vignette_over_http(client: httpx.AsyncClient) -> None:
    fx = fixture("seed-acute-34f-after-ms-workup-lp")
    response = await client.post(SELECT, json=fx["request"])
    assert response.status_code == 200
    card = response.json()["cards"][0]
    assert card["source"]["topic"] == {
        "system": "urn:pdph-imaging:scenario",
        "code": "pdph-acute",
        "display": "Post-dural-puncture headache within 72 hours",
    }
    assert card["extension"]["pdph-imaging.hours-since-puncture"] == 48.0
    assert card["suggestions"][0]["actions"] == [
        {
            "type": "delete",
            "description": "Cancel the draft order: MRI brain without and with contrast",
            "resourceId": "ServiceRequest/sr-mri-brain",
        }
    ]


BAD_REQUESTS: list[tuple[str, Any, int, str]] = [
    ("not json", b"{bad json", 400, "malformed-json"),
    ("empty body", b"", 400, "malformed-json"),
    ("a list", [1, 2], 400, "invalid-request"),
    ("missing hook", {"hookInstance": "h", "context": {}}, 400, "invalid-request"),
    ("missing context", {"hook": "order-select", "hookInstance": "h"}, 400, "invalid-request"),
    (
        "missing patientId",
        {"hook": "order-select", "hookInstance": "h", "context": {"draftOrders": bundle([])}},
        400,
        "invalid-request",
    ),
    (
        "draftOrders not a Bundle",
        {
            "hook": "order-select",
            "hookInstance": "h",
            "context": {
                "patientId": "p",
                "draftOrders": {"resourceType": "ServiceRequest"},
                "selections": [],
            },
        },
        400,
        "invalid-request",
    ),
    (
        "selections missing on order-select",
        {
            "hook": "order-select",
            "hookInstance": "h",
            "context": {"patientId": "p", "draftOrders": bundle([])},
        },
        400,
        "invalid-request",
    ),
    (
        "wrong hook for the service",
        {
            "hook": "order-sign",
            "hookInstance": "h",
            "context": {"patientId": "p", "draftOrders": bundle([])},
        },
        400,
        "hook-mismatch",
    ),
    (
        "bad fhirServer",
        {
            "hook": "order-select",
            "hookInstance": "h",
            "fhirServer": "file:///etc/passwd",
            "context": {"patientId": "p", "draftOrders": bundle([]), "selections": []},
        },
        400,
        "invalid-request",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "status", "error"), [b[1:] for b in BAD_REQUESTS], ids=[b[0] for b in BAD_REQUESTS]
)
async def test_bad_requests_get_clear_4xx(
    client: httpx.AsyncClient, body: Any, status: int, error: str
) -> None:
    if isinstance(body, bytes):
        response = await client.post(
            SELECT, content=body, headers={"Content-Type": "application/json"}
        )
    else:
        response = await client.post(SELECT, json=body)
    assert response.status_code == status
    payload = response.json()
    assert payload["error"] == error
    assert payload["message"]
    assert "Traceback" not in response.text


@pytest.mark.anyio
async def test_unknown_service_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/cds-services/nope", json=fixture("child-is-silent")["request"])
    assert response.status_code == 404
    assert response.json()["error"] == "unknown-service"


@pytest.mark.anyio
async def test_invalid_resources_are_skipped_not_fatal(client: httpx.AsyncClient) -> None:
    broken = lumbar_puncture(20) | {"performedDateTime": "yesterday-ish"}
    request = hook_request(
        [service_request("sr-1", MRI_BRAIN_WWO)], [broken, lumbar_puncture(30), pdph()]
    )
    response = await client.post(SIGN, json=request)
    assert response.status_code == 200
    cards = response.json()["cards"]
    assert [c["extension"]["pdph-imaging.hours-since-puncture"] for c in cards] == [30.0]


@pytest.mark.anyio
async def test_no_imaging_order_answers_without_reading_anything(client: httpx.AsyncClient) -> None:
    request = hook_request([service_request("sr-1", {"text": "Complete blood count"})], prefetch={})
    request.pop("prefetch")
    response = await client.post(SIGN, json=request)  # no prefetch, no fhirServer: still fine
    assert response.status_code == 200
    assert response.json() == {"cards": []}


@pytest.mark.anyio
async def test_missing_prefetch_without_fhir_server_is_412(client: httpx.AsyncClient) -> None:
    request = hook_request([service_request("sr-1", MRI_BRAIN_WWO)], prefetch={"patient": None})
    response = await client.post(SIGN, json=request)
    assert response.status_code == 412
    body = response.json()
    assert body["error"] == "prefetch-unavailable"
    assert {d["prefetch"] for d in body["details"]} == {"procedures", "conditions", "observations"}


@pytest.mark.anyio
@respx.mock
async def test_fetches_from_fhir_server_when_prefetch_absent(client: httpx.AsyncClient) -> None:
    base = "https://ehr.example.org/fhir"
    respx.get(f"{base}/Patient/pat-1").respond(json={"resourceType": "Patient", "id": "pat-1"})
    respx.get(url__startswith=f"{base}/Procedure").respond(json=bundle([lumbar_puncture(100)]))
    respx.get(url__startswith=f"{base}/Condition").respond(json=bundle([pdph()]))
    respx.get(url__startswith=f"{base}/Observation").respond(json=bundle([]))
    request = hook_request([service_request("sr-1", MRI_BRAIN_WWO)], prefetch={})
    request.pop("prefetch")
    request["fhirServer"] = base
    response = await client.post(SIGN, json=request)
    assert response.status_code == 200, response.text
    assert response.json()["cards"][0]["source"]["topic"]["code"] == "pdph-persistent"


@pytest.mark.anyio
@respx.mock
async def test_fhir_server_error_is_412(client: httpx.AsyncClient) -> None:
    respx.get(url__startswith="https://ehr.example.org/fhir").respond(status_code=503)
    request = hook_request([service_request("sr-1", MRI_BRAIN_WWO)], prefetch={})
    request.pop("prefetch")
    request["fhirServer"] = "https://ehr.example.org/fhir"
    response = await client.post(SIGN, json=request)
    assert response.status_code == 412
    assert {d["cause"] for d in response.json()["details"]} == {"http-503"}


def feedback_item(card: str = "card-1", **extra: Any) -> dict[str, Any]:
    return {
        "card": card,
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": "s-1"}],
        "outcomeTimestamp": "2026-11-24T15:00:00Z",
    } | extra


@pytest.mark.anyio
async def test_feedback_is_stored_once(client: httpx.AsyncClient) -> None:
    overridden = feedback_item(
        "card-2",
        outcome="overridden",
        acceptedSuggestions=None,
        overrideReason={
            "reason": {
                "system": "urn:pdph-imaging:override-reason",
                "code": "dsm-unavailable",
                "display": "DSM not available",
            },
            "userComment": "Referred to tertiary centre",
        },
    )
    overridden = {k: v for k, v in overridden.items() if v is not None}
    body = {"feedback": [feedback_item(), overridden]}
    first = await client.post(f"{SELECT}/feedback", json=body)
    assert first.status_code == 200
    # Cards this app never issued: stored all the same, and flagged (tests/test_feedback_hygiene.py).
    assert first.json() == {"received": 2, "stored": 2, "flagged": 2}
    again = await client.post(f"{SELECT}/feedback", json=body)
    assert again.json() == {"received": 2, "stored": 0, "flagged": 2}
    store = runtime_of(client.app).store  # type: ignore[attr-defined]
    assert store.count() == 2


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"feedback": []},
        {
            "feedback": [
                {"card": "c", "outcome": "maybe", "outcomeTimestamp": "2026-11-24T15:00:00Z"}
            ]
        },
        {"feedback": [{"card": "c", "outcome": "accepted"}]},
        {
            "feedback": [
                {"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-11-24T15:00:00"}
            ]
        },
        {"feedback": "lots"},
    ],
)
async def test_malformed_feedback_is_400(client: httpx.AsyncClient, body: Any) -> None:
    response = await client.post(f"{SELECT}/feedback", json=body)
    assert response.status_code == 400
    assert response.json()["details"]


@pytest.mark.anyio
async def test_feedback_for_unknown_service_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/cds-services/nope/feedback", json={"feedback": [feedback_item()]}
    )
    assert response.status_code == 404


@pytest.mark.anyio
async def test_feedback_survives_a_restart(make_app: Any) -> None:
    for expected in (1, 1):
        app = make_app()
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                await c.post(f"{SELECT}/feedback", json={"feedback": [feedback_item()]})
            assert runtime_of(app).store.count() == expected


@pytest.mark.anyio
async def test_unknown_route_and_method_are_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"] == "http-error"
    wrong = await client.delete("/cds-services")
    assert wrong.status_code == 405 and wrong.json()["error"] == "http-error"


@pytest.mark.anyio
async def test_openapi_describes_the_hook_request(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "/cds-services/{service_id}" in schema["paths"]
    assert "HookRequest" in schema["components"]["schemas"]


@pytest.mark.anyio
async def test_skipped_resource_is_logged_without_its_content(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    broken = lumbar_puncture(20) | {"performedDateTime": "Jane-Doe-secret"}
    request = hook_request([service_request("sr-1", MRI_BRAIN_WWO)], [broken, pdph()])
    with caplog.at_level("WARNING"):
        response = await client.post(SIGN, json=request)
    assert response.status_code == 200
    skipped = [r for r in caplog.records if r.getMessage() == "resource_skipped"]
    assert len(skipped) == 1
    assert skipped[0].resource_type == "Procedure"  # type: ignore[attr-defined]
    assert "Jane-Doe-secret" not in caplog.text


@pytest.mark.anyio
async def test_a_resource_with_a_non_string_type_is_ignored(client: httpx.AsyncClient) -> None:
    """Found by fuzzing: a `resourceType` that is a list once ended in a 500."""
    request = hook_request([service_request("sr-1", MRI_BRAIN_WWO)], [lumbar_puncture(30), pdph()])
    request["prefetch"]["conditions"]["entry"].append({"resource": {"resourceType": ["Condition"]}})
    response = await client.post(SIGN, json=request)
    assert response.status_code == 200
    assert response.json()["cards"][0]["source"]["topic"]["code"] == "pdph-acute"


@pytest.mark.anyio
async def test_explanation_page_holds_knowledge_only(client: httpx.AsyncClient) -> None:
    page = await client.get("/explain/pdph-persistent")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "Radiographic myelography, digital subtraction, complete spine" in text
    assert "usually appropriate" in text and "10–30 mSv" in text
    assert "beyond 72 hours" in text  # the configured threshold, filled in
    assert "<script" not in text and "http" not in text.split("<body>")[1].split("Knowledge set")[0]
    missing = await client.get("/explain/no-such-scenario")
    assert missing.status_code == 404 and missing.json()["error"] == "unknown-scenario"


@pytest.mark.anyio
async def test_every_scenario_has_its_explanation_page(
    client: httpx.AsyncClient, knowledge: Knowledge
) -> None:
    for scenario in knowledge.rules.scenarios:
        page = await client.get(f"/explain/{scenario}")
        assert page.status_code == 200, scenario
        assert "Sources" in page.text and "{" not in page.text.split("<body>")[1], scenario


@pytest.mark.anyio
async def test_errors_say_what_to_fix(client: httpx.AsyncClient) -> None:
    form = await client.post(
        SIGN,
        content=b"hook=order-sign",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415 and form.json()["error"] == "unsupported-media-type"
    assert "Content-Type: application/json" in form.json()["message"]
    broken = await client.post(
        SIGN,
        content=b'{\n  "hook": "order-sign",\n  oops\n}',
        headers={"Content-Type": "application/json"},
    )
    assert broken.status_code == 400 and broken.json()["error"] == "malformed-json"
    assert "line 3, column 3" in broken.json()["message"]
    query = await client.get("/analytics/overrides", params={"since": "yesterday"})
    assert query.status_code == 400 and query.json()["error"] == "invalid-query"
    assert query.json()["details"][0]["location"] == "query.since"
    valid = hook_request([service_request("sr-1", MRI_BRAIN_WWO)], [lumbar_puncture(30), pdph()])
    unknown = await client.post("/cds-services/nope", json=valid)
    assert unknown.status_code == 404 and "details" in unknown.json()


@pytest.mark.anyio
async def test_requests_that_point_at_nothing_are_logged_and_counted(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    def count(kind: str) -> float:
        return metric("cds_request_anomalies_total", kind=kind)

    before = (count("patient-matches-no-resource"), count("selection-matches-no-draft-order"))
    others = hook_request(
        [service_request("sr-1", MRI_BRAIN_WWO)],
        [lumbar_puncture(30, subject={"reference": "Patient/someone-else"})],
    )
    unselected = hook_request([service_request("sr-1", MRI_BRAIN_WWO)], [], hook="order-select")
    unselected["context"]["selections"] = ["ServiceRequest/not-in-the-bundle"]
    with caplog.at_level("WARNING"):
        first = await client.post(SIGN, json=others)
        second = await client.post(SELECT, json=unselected)
    assert first.json()["cards"] == [] and second.json() == {"cards": []}
    events = {r.getMessage() for r in caplog.records}
    assert {"patient_matches_no_resource", "selection_matches_no_draft_order"} <= events
    after = (count("patient-matches-no-resource"), count("selection-matches-no-draft-order"))
    assert after == (before[0] + 1, before[1] + 1)


@pytest.mark.anyio
async def test_api_docs_work_offline(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "docs-assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    bundle = await client.get("/docs-assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    # Swagger UI 4 cannot read OpenAPI 3.1 ("does not specify a valid version field"); 5 can.
    assert (await client.get("/openapi.json")).json()["openapi"].startswith("3.1")
    version = re.search(rb'PACKAGE_VERSION:"(\d+)\.', bundle.content)
    assert version is not None and int(version.group(1)) >= 5
    assert (await client.get("/docs-assets/swagger-ui.css")).status_code == 200
