"""Schemathesis against the app's own OpenAPI document (app.openapi()): positive and negative cases
for every operation, half of them aimed at the real service ids. Requests go through the ASGI app
(FuzzClient); every answer passes FuzzClient's checks and Schemathesis' `not_a_server_error` and
`response_schema_conformance` checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from cds_service.api.app import create_app
from tests.security_helpers import BASE_URL, FuzzClient, fuzz_examples, open_settings

pytestmark = pytest.mark.fuzz

SERVICE_IDS = ["pdph-imaging-order-select", "pdph-imaging-order-sign"]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def openapi_document() -> dict[str, Any]:
    return create_app().openapi()


SCHEMA = schemathesis.openapi.from_dict(openapi_document())


def cases() -> st.SearchStrategy[Any]:
    anywhere = [SCHEMA.as_strategy(mode) for mode in MODES]
    real_services = [
        SCHEMA[path]["POST"].as_strategy(mode, path_parameters={"service_id": service})
        for path in ("/cds-services/{service_id}", "/cds-services/{service_id}/feedback")
        for service in SERVICE_IDS
        for mode in MODES
    ]
    return st.one_of(*anywhere, *real_services)


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzClient]:
    tmp = tmp_path_factory.mktemp("fuzz-openapi")
    with FuzzClient.running(open_settings(tmp, fhir_timeout_s=0.5), "schemathesis") as client:
        yield client


@settings(
    max_examples=fuzz_examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(case=cases())
def test_openapi_operations(fuzz: FuzzClient, case: Any) -> None:
    sent = case.as_transport_kwargs(base_url=BASE_URL)
    path = sent["url"].removeprefix(BASE_URL)
    kwargs: dict[str, Any] = {"headers": sent.get("headers"), "params": sent.get("params")}
    if "json" in sent:
        kwargs["json"] = sent["json"]
    elif "data" in sent:
        kwargs["content"] = sent["data"]
    response = fuzz.request(sent["method"], path, **kwargs)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
