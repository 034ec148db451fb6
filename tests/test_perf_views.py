"""The resource views of cds_service/fhir/views.py (validated instead of full fhir.resources R4B models, for
speed) read the same values as the R4B models, and accept or reject the same resources wherever the
difference could change a rule: on every fixture resource, on a large synthetic patient and on the
usual kinds of bad entry."""

from __future__ import annotations

import copy
from typing import Any, get_type_hints

import pytest
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import BaseModel, ValidationError

from bench.payloads import large_patient_request
from cds_service.fhir import views
from cds_service.fhir.views import (
    ConditionView,
    ObservationView,
    PatientView,
    ProcedureView,
    ResourceView,
    ServiceRequestView,
    read_resources,
)
from cds_tools.fixtures import fixture_paths, load_fixture
from tests.conftest import NOW

PAIRS: dict[str, tuple[type[ResourceView], Any]] = {
    "Patient": (PatientView, Patient),
    "Procedure": (ProcedureView, Procedure),
    "Condition": (ConditionView, Condition),
    "Observation": (ObservationView, Observation),
    "ServiceRequest": (ServiceRequestView, ServiceRequest),
}


def _resources(request: dict[str, Any]) -> list[dict[str, Any]]:
    found = [e["resource"] for e in request["context"]["draftOrders"].get("entry", [])]
    for value in (request.get("prefetch") or {}).values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            found += [e["resource"] for e in value.get("entry", []) if "resource" in e]
        elif isinstance(value, dict):
            found.append(value)
    return [r for r in found if r.get("resourceType") in PAIRS]


def _all_resources() -> list[dict[str, Any]]:
    resources = [r for p in fixture_paths() for r in _resources(load_fixture(p, NOW)["request"])]
    large = _resources(large_patient_request(NOW, 100, 40, 60))
    return resources + large


def _accepts(model: Any, raw: dict[str, Any]) -> Any:
    try:
        return model.model_validate(raw)
    except (ValidationError, ValueError, TypeError):
        return None


# Elements of the DSTU2/STU3 shapes the views read on purpose (SPEC §3): R4B has no such element.
OLDER_SHAPES = {"patient", "dateRecorded", "assertedDate"}
TYPED_DICT_NAMES = ("Coding", "CodeableConcept", "Reference")


# Elements the views validate as typed dicts (views.py: no rule reads them from a view): the keys
# of each, absent when the resource has none (the R4B model's value is then None).
TYPED_DICTS = {name: set(get_type_hints(getattr(views, name))) for name in TYPED_DICT_NAMES}


def _same_values(view: Any, full: Any, where: str) -> None:
    if isinstance(view, dict):  # a typed dict: its keys, as the R4B model's fields of that name
        names: Any = TYPED_DICTS[type(full).__name__]
        assert set(view) <= names, where
        read = view.get
    else:
        names, read = type(view).model_fields, lambda name: getattr(view, name)
    for name in names:
        if name in OLDER_SHAPES and not hasattr(full, name):
            continue
        mine, theirs = read(name), getattr(full, name)
        if isinstance(mine, BaseModel | dict):
            _same_values(mine, theirs, f"{where}.{name}")
        elif isinstance(mine, list):
            assert len(mine) == len(theirs), f"{where}.{name}"
            for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
                _same_values(a, b, f"{where}.{name}[{i}]")
        else:
            assert mine == theirs, f"{where}.{name}: {mine!r} != {theirs!r}"


def test_views_read_what_the_r4b_models_read() -> None:
    resources = _all_resources()
    assert len(resources) > 200
    for raw in resources:
        view_type, model = PAIRS[raw["resourceType"]]
        full = _accepts(model, raw)
        view = _accepts(view_type, raw)
        where = f"{raw['resourceType']}/{raw.get('id')}"
        assert (view is None) == (full is None), where
        if view is not None:
            _same_values(view, full, where)


def _procedure() -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": "lp-1",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62270"}]},
        "performedDateTime": "2026-11-20T10:00:00Z",
    }


def _condition() -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1"},
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"text": "Post-dural puncture headache"},
        "onsetDateTime": "2026-11-21",
    }


def _observation() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "t1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
        "effectiveDateTime": "2026-11-24T10:00:00+01:00",
        "valueQuantity": {"value": 38.4, "unit": "Cel"},
    }


def _order() -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": "sr-1",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "code": {"text": "MRI brain"},
    }


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    resource = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            resource.pop(key, None)
        else:
            resource[key] = value
    return resource


BAD_ENTRIES = [
    _with(_procedure(), performedDateTime="2026-13-01"),
    _with(_procedure(), performedDateTime="yesterday"),
    _with(_procedure(), performedDateTime="2026-11-20T10:00:00"),  # a time needs a zone
    _with(_procedure(), performedPeriod={"end": "2026-11-20T10:00:00Z"}),  # two performed[x]
    _with(_procedure(), performedDateTime=None, performedPeriod={"end": "nope"}),
    _with(_procedure(), status=5),
    _with(_procedure(), subject=None),
    _with(_procedure(), id="bad id"),
    _with(_procedure(), code="62270"),
    _with(_condition(), onsetDateTime="2026-02-30"),
    _with(_condition(), onsetString="last week"),  # two onset[x]
    _with(_observation(), valueQuantity={"value": "abc"}),
    _with(_observation(), code=None),
    _with(_observation(), effectivePeriod={"start": "2026-11-24"}),
    _with(_observation(), valueString="38.4"),  # two value[x]
    _with(_observation(), issued="2026-11-24"),  # an instant needs a time
    {"resourceType": "Patient", "id": "p1", "birthDate": "1990-02-30"},
    {"resourceType": "Patient", "id": "p1", "birthDate": "1990-01-01T00:00:00Z"},
    _with(_order(), intent=None),
    _with(_order(), reasonCode={"text": "headache"}),  # must be a list
]

GOOD_ENTRIES = [
    _procedure(),
    _with(_procedure(), performedDateTime=None, performedPeriod={"start": "2026-11"}),
    _condition(),
    _with(_condition(), onsetDateTime=None, recordedDate="2026"),
    _observation(),
    _with(_observation(), valueQuantity=None, valueBoolean=True),
    {"resourceType": "Patient", "id": "p1", "birthDate": "1990"},
    _order(),
]


@pytest.mark.parametrize("raw", BAD_ENTRIES, ids=lambda r: f"{r['resourceType']}")
def test_bad_entries_are_rejected_by_both(raw: dict[str, Any]) -> None:
    view_type, model = PAIRS[raw["resourceType"]]
    assert _accepts(model, raw) is None, "the R4B model accepts it: not a bad entry"
    assert _accepts(view_type, raw) is None


@pytest.mark.parametrize("raw", GOOD_ENTRIES, ids=lambda r: f"{r['resourceType']}")
def test_good_entries_read_the_same(raw: dict[str, Any]) -> None:
    view_type, model = PAIRS[raw["resourceType"]]
    full, view = _accepts(model, raw), _accepts(view_type, raw)
    assert full is not None and view is not None
    _same_values(view, full, raw["resourceType"])


def test_older_shapes_are_read_where_r4b_refuses_them() -> None:
    """The other documented difference: a DSTU2/STU3 Condition (string statuses, `patient`) is
    rejected by R4B but read by the view, since the sandbox's default FHIR server sends it."""
    raw = _with(_condition(), clinicalStatus="active", subject=None)
    raw["patient"] = {"reference": "Patient/p1"}
    assert _accepts(Condition, raw) is None
    view = _accepts(ConditionView, raw)
    assert view is not None and view.clinicalStatus == "active"
    assert _accepts(ConditionView, _with(_condition(), subject=None)) is None  # no subject at all


def test_an_error_in_an_element_no_rule_reads_does_not_drop_the_resource() -> None:
    """The documented difference: R4B rejects the whole resource, the view keeps what rules need."""
    raw = _with(_procedure(), note="not a list of annotations")
    assert _accepts(Procedure, raw) is None
    assert _accepts(ProcedureView, raw) is not None


def test_read_resources_skips_bad_entries_and_keeps_the_rest() -> None:
    resources = [_procedure(), _with(_procedure(), id="lp-2", performedDateTime="nope"), "x"]
    parsed = read_resources([r for r in resources if isinstance(r, dict)], ProcedureView)
    assert [p.model.id for p in parsed] == ["lp-1"]
