"""Property-based fuzzing of the hook and feedback endpoints with Hypothesis: CDS Hooks requests built
from FHIR resources that mix the knowledge files' real codes and words with garbage, and requests
corrupted at a random place. Whatever comes in, the answer is never a 5xx, and a 200 is a valid CDS
Hooks response (checked by FuzzClient)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.config import HOOKS_DIR
from tests.security_helpers import (
    FHIR_BASE,
    NOW,
    PATIENT_ID,
    FuzzClient,
    fuzz_examples,
    lumbar_puncture,
    mri_brain_order,
    open_settings,
    patient,
    pdph_condition,
)

pytestmark = pytest.mark.fuzz


def fuzz_settings(in_suite: int) -> settings:
    return settings(
        max_examples=fuzz_examples(in_suite),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def knowledge_codings(pattern: str = "*.yaml") -> list[dict[str, str]]:
    """Every (system, code) the knowledge files recognise, so fuzzed resources reach the rules."""
    folder = HOOKS_DIR / "pdph_imaging"
    systems = yaml.load((folder / "valuesets.yaml").read_bytes(), Loader=yaml.CSafeLoader)[
        "systems"
    ]
    found: dict[tuple[str, str], None] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("code"), str) and isinstance(node.get("system"), str):
                found[(systems.get(node["system"], node["system"]), node["code"])] = None
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted(folder.glob(pattern)):
        walk(yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader))
    return [{"system": system, "code": code} for system, code in found]


CODINGS = knowledge_codings()
IMAGING_CODINGS = knowledge_codings("imaging.yaml")
PHRASES = [
    "MRI brain without and with contrast", "MRI BRAIN W/O CONTRAST", "CT head", "CT myelogram",
    "Digital subtraction myelography, complete spine", "MRI lumbar spine", "MRI complete spine",
    "lumbar puncture", "spinal anaesthesia", "epidural blood patch", "post-dural puncture headache",
    "orthostatic headache", "headache", "no headache", "thunderclap headache", "fever",
    "nuchal rigidity", "altered mental status", "seizure", "multiple sclerosis", "low back pain",
    "intracranial hypotension", "CSF leak", "Paracetamol 1 g",
]  # fmt: skip

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
words = st.sampled_from(PHRASES) | st.text(max_size=40)
ids = st.sampled_from(["sr-1", "sr-2", "lp-1", "x"]) | st.text(min_size=1, max_size=12)


@st.composite
def instants(draw: st.DrawFn) -> str:
    """FHIR dateTime values around now: full instants with zones, date-only, and garbage."""
    hours = draw(st.floats(min_value=-24 * 400, max_value=24 * 40, allow_nan=False))
    moment = NOW - timedelta(hours=hours)
    return draw(
        st.sampled_from(
            [
                moment.isoformat(),
                moment.isoformat().replace("+00:00", "Z"),
                moment.date().isoformat(),
                moment.strftime("%Y-%m"),
                moment.strftime("%Y-%m-%dT%H:%M:%S"),  # no zone: invalid FHIR
                "0001-01-01T00:00:00+05:00",  # no UTC equivalent
                "9999-12-31T23:59:59-05:00",
                "0001-01-01",
                "9999-12-31",
            ]
        )
        | st.text(max_size=25)
    )


@st.composite
def concepts(draw: st.DrawFn) -> dict[str, Any]:
    coding = st.sampled_from(CODINGS) | st.fixed_dictionaries(
        {"system": st.text(max_size=15), "code": st.text(max_size=8)},
        optional={"display": words},
    )
    concept: dict[str, Any] = {}
    if draw(st.booleans()):
        concept["coding"] = draw(st.lists(coding, max_size=3))
    if draw(st.booleans()):
        concept["text"] = draw(words)
    return concept


def status(*known: str) -> st.SearchStrategy[str]:
    return st.sampled_from(known) | st.text(max_size=10)


@st.composite
def service_requests(draw: st.DrawFn) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": draw(status("draft", "active")),
        "intent": draw(status("order", "original-order", "proposal", "plan")),
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": draw(concepts()),
    }
    if draw(st.integers(0, 9)):
        resource["id"] = draw(ids)
    if draw(st.booleans()):
        resource["reasonCode"] = draw(st.lists(concepts(), max_size=2))
    if draw(st.integers(0, 4)) == 0:
        resource["reasonReference"] = [{"reference": draw(st.sampled_from(["Condition/c-1", "x"]))}]
    return resource


@st.composite
def procedures(draw: st.DrawFn) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": draw(ids),
        "status": draw(status("completed", "in-progress", "entered-in-error", "not-done")),
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": draw(concepts()),
    }
    timing = draw(st.integers(0, 3))
    if timing == 1:
        resource["performedDateTime"] = draw(instants())
    elif timing == 2:
        period = {"start": draw(instants())}
        if draw(st.booleans()):
            period["end"] = draw(instants())
        resource["performedPeriod"] = period
    return resource


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    system = "http://terminology.hl7.org/CodeSystem/condition-"
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": draw(ids),
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": draw(concepts()),
    }
    if draw(st.booleans()):
        code = draw(status("active", "recurrence", "resolved", "inactive"))
        resource["clinicalStatus"] = {"coding": [{"system": system + "clinical", "code": code}]}
    if draw(st.booleans()):
        code = draw(status("confirmed", "provisional", "refuted", "entered-in-error"))
        resource["verificationStatus"] = {
            "coding": [{"system": system + "ver-status", "code": code}]
        }
    for field in ("onsetDateTime", "recordedDate"):
        if draw(st.booleans()):
            resource[field] = draw(instants())
    return resource


@st.composite
def observations(draw: st.DrawFn) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": draw(ids),
        "status": draw(status("final", "amended", "preliminary", "entered-in-error")),
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "code": draw(concepts()),
        "effectiveDateTime": draw(instants()),
    }
    value = draw(st.integers(0, 3))
    if value == 1:
        resource["valueQuantity"] = {
            "value": draw(st.floats(min_value=-50, max_value=150) | st.integers()),
            "unit": draw(st.sampled_from(["Cel", "°C", "[degF]", "degF", "K", ""])),
            "system": "http://unitsofmeasure.org",
        }
    elif value == 2:
        resource["valueCodeableConcept"] = draw(concepts())
    return resource


@st.composite
def patients(draw: st.DrawFn) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Patient", "id": PATIENT_ID}
    if draw(st.booleans()):
        resource["birthDate"] = draw(
            st.sampled_from(["1990-03-04", "2015-06-01", "1950", "2026-11-24"])
            | st.text(max_size=12)
        )
    return resource


def bundles(
    resources: st.SearchStrategy[dict[str, Any]], typical: st.SearchStrategy[dict[str, Any]]
) -> st.SearchStrategy[Any]:
    """Search results: often one typical resource of the acute PDPH story (so that fuzzed requests
    reach the rules and the cards), with fuzzed resources and junk entries around it."""
    entry = st.builds(lambda r: {"resource": r}, resources | typical) | json_values
    outcome = st.just({"resourceType": "OperationOutcome", "issue": []})
    bundle = st.builds(
        lambda e: {"resourceType": "Bundle", "entry": e}, st.lists(entry, max_size=5)
    )
    return st.one_of(bundle, bundle, bundle, bundle, st.none(), outcome, json_values)


@st.composite
def wild_requests(draw: st.DrawFn, hook: str) -> dict[str, Any]:
    """Anything goes: random orders, selections, prefetch values (or none), wrong hooks."""
    orders = draw(st.lists(service_requests() | ids.map(mri_brain_order), max_size=4))
    entries: list[Any] = [{"resource": o} for o in orders]
    if draw(st.integers(0, 9)) == 0:
        entries.append(draw(json_values))
    context: dict[str, Any] = {
        "patientId": PATIENT_ID,
        "draftOrders": {"resourceType": "Bundle", "entry": entries},
    }
    if hook == "order-select" or draw(st.booleans()):
        references = [f"ServiceRequest/{o.get('id')}" for o in orders]
        context["selections"] = draw(
            st.lists(st.sampled_from(references) | st.text(max_size=12), max_size=4)
            if references
            else st.lists(st.text(max_size=12), max_size=2)
        )
    prefetch_parts = {
        "patient": st.one_of(patients(), st.builds(patient), st.none(), json_values),
        "procedures": bundles(procedures(), lp_story),
        "conditions": bundles(conditions(), st.builds(pdph_condition)),
        "observations": bundles(observations(), observations()),
    }
    prefetch = {k: draw(v) for k, v in prefetch_parts.items() if draw(st.integers(0, 5))}
    request: dict[str, Any] = {
        "hook": hook if draw(st.integers(0, 19)) else draw(st.sampled_from(["order-sign", "x"])),
        "hookInstance": draw(st.uuids().map(str) | st.text(min_size=1, max_size=40)),
        "context": context,
        "prefetch": prefetch,
    }
    if draw(st.booleans()):
        request["fhirServer"] = FHIR_BASE
        if draw(st.booleans()):
            request["fhirAuthorization"] = {"access_token": "t0k", "token_type": "Bearer"}
    return request


lp_story = st.floats(0, 24 * 40).map(lambda hours: lumbar_puncture(hours))


@st.composite
def story_requests(draw: st.DrawFn, hook: str) -> dict[str, Any]:
    """The acute-PDPH story (a puncture, a headache, imaging ordered) with fuzzed variations: the
    study drafted, the hours since the puncture, extra fuzzed resources of every kind, so that the
    decision and the card renderer see many combinations."""
    orders = []
    for n in range(draw(st.integers(1, 3))):
        order = mri_brain_order(f"sr-{n}")
        order["code"] = {"coding": [draw(st.sampled_from(IMAGING_CODINGS))]}
        if draw(st.booleans()):
            order["code"]["text"] = draw(words)
        if draw(st.integers(0, 3)) == 0:
            order["reasonCode"] = draw(st.lists(concepts(), min_size=1, max_size=2))
        orders.append(order)
    orders += draw(st.lists(service_requests(), max_size=2))
    context: dict[str, Any] = {
        "patientId": PATIENT_ID,
        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": o} for o in orders]},
    }
    if hook == "order-select":
        context["selections"] = [f"ServiceRequest/{o.get('id')}" for o in orders]

    def search(typical: list[Any], fuzzed: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
        extra = draw(st.lists(fuzzed, max_size=3))
        return {"resourceType": "Bundle", "entry": [{"resource": r} for r in typical + extra]}

    return {
        "hook": hook,
        "hookInstance": draw(st.uuids().map(str)),
        "context": context,
        "prefetch": {
            "patient": draw(st.builds(patient) | patients()),
            "procedures": search([draw(lp_story)], procedures()),
            "conditions": search(
                draw(st.lists(st.builds(pdph_condition), max_size=1)), conditions()
            ),
            "observations": search([], observations()),
        },
    }


def hook_requests(hook: str) -> st.SearchStrategy[dict[str, Any]]:
    return story_requests(hook) | wild_requests(hook)


def corrupt(value: Any, path: list[int], replacement: Any) -> Any:
    """`value` with the node reached by following `path` (indices modulo each container's size)
    replaced: wrong types at every depth."""
    if not path or not isinstance(value, dict | list) or not value:
        return replacement
    keys = list(value) if isinstance(value, dict) else list(range(len(value)))
    chosen = keys[path[0] % len(keys)]
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[chosen] = corrupt(value[chosen], path[1:], replacement)  # type: ignore[index]
    return copy


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzClient]:
    tmp: Path = tmp_path_factory.mktemp("fuzz-hooks")
    with FuzzClient.running(open_settings(tmp, fhir_timeout_s=0.5), "hypothesis-hooks") as client:
        yield client


SERVICES = {
    "order-select": "/cds-services/pdph-imaging-order-select",
    "order-sign": "/cds-services/pdph-imaging-order-sign",
}


@fuzz_settings(150)
@given(hook=st.sampled_from(list(SERVICES)), data=st.data())
def test_fuzzed_hook_requests(fuzz: FuzzClient, hook: str, data: st.DataObject) -> None:
    request = data.draw(hook_requests(hook))
    fuzz.request("POST", SERVICES[hook], json=request)


@fuzz_settings(100)
@given(
    hook=st.sampled_from(list(SERVICES)),
    data=st.data(),
    path=st.lists(st.integers(0, 50), min_size=1, max_size=7),
    replacement=json_values,
)
def test_corrupted_hook_requests(
    fuzz: FuzzClient, hook: str, data: st.DataObject, path: list[int], replacement: Any
) -> None:
    request = corrupt(data.draw(hook_requests(hook)), path, replacement)
    fuzz.request("POST", SERVICES[hook], json=request)


@fuzz_settings(50)
@given(body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_bytes(fuzz: FuzzClient, body: bytes) -> None:
    for path in (*SERVICES.values(), "/cds-services/pdph-imaging-order-sign/feedback"):
        fuzz.request("POST", path, content=body, headers={"Content-Type": "application/json"})


feedback_items = st.fixed_dictionaries(
    {
        "card": st.uuids().map(str) | st.text(max_size=30),
        "outcome": st.sampled_from(["accepted", "overridden"]) | st.text(max_size=10),
        "outcomeTimestamp": instants(),
    },
    optional={
        "acceptedSuggestions": st.lists(st.fixed_dictionaries({"id": st.text(max_size=20)})),
        "overrideReason": st.fixed_dictionaries(
            {},
            optional={
                "reason": st.fixed_dictionaries(
                    {"system": st.text(max_size=20), "code": st.text(max_size=10)},
                    optional={"display": st.text(max_size=20)},
                ),
                "userComment": st.text(max_size=200),
            },
        ),
    },
)


@fuzz_settings(60)
@given(
    service=st.sampled_from(["pdph-imaging-order-select", "pdph-imaging-order-sign", "nope"]),
    feedback=st.lists(feedback_items | json_values, max_size=4),
)
def test_fuzzed_feedback(fuzz: FuzzClient, service: str, feedback: list[Any]) -> None:
    fuzz.request("POST", f"/cds-services/{service}/feedback", json={"feedback": feedback})
