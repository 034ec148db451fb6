"""The views validate the elements no rule reads from them (Coding, CodeableConcept, Reference) as
typed dicts instead of nested models (cds_service/fhir/views.py): each view accepts and refuses what
it did with nested models, with the same error locations (what read_resources logs of a skipped
resource) and the same values, on every fixture resource, a large synthetic patient and generated
odd values of those elements."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest
from fhir_core.types import CodeType, StringType, UriType
from pydantic import BaseModel, ConfigDict, ValidationError

from cds_service.fhir import views
from tests.test_perf_views import BAD_ENTRIES, GOOD_ENTRIES, _all_resources


class _Element(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# The nested models the views had, under the same names (a union's error location names them).
class Coding(_Element):
    system: UriType | None = None
    code: CodeType | None = None
    display: StringType | None = None


class CodeableConcept(_Element):
    coding: list[Coding] | None = None
    text: StringType | None = None


class Reference(_Element):
    reference: StringType | None = None
    display: StringType | None = None


class ProcedureView(views.ProcedureView):
    code: CodeableConcept | None = None
    subject: Reference


class ConditionView(views.ConditionView):
    clinicalStatus: CodeableConcept | CodeType | None = None
    verificationStatus: CodeableConcept | CodeType | None = None
    code: CodeableConcept | None = None
    subject: Reference | None = None
    patient: Reference | None = None


class ObservationView(views.ObservationView):
    code: CodeableConcept
    subject: Reference | None = None
    valueCodeableConcept: CodeableConcept | None = None
    dataAbsentReason: CodeableConcept | None = None


class DiagnosticReportView(views.DiagnosticReportView):
    category: list[CodeableConcept] | None = None
    code: CodeableConcept
    subject: Reference | None = None
    conclusionCode: list[CodeableConcept] | None = None


class ImagingStudyView(views.ImagingStudyView):
    subject: Reference
    procedureCode: list[CodeableConcept] | None = None


class ServiceRequestView(views.ServiceRequestView):
    code: CodeableConcept | None = None
    subject: Reference
    encounter: Reference | None = None
    reasonCode: list[CodeableConcept] | None = None
    reasonReference: list[Reference] | None = None


NESTED: dict[str, tuple[type[views.ResourceView], type[views.ResourceView]]] = {
    "Procedure": (ProcedureView, views.ProcedureView),
    "Condition": (ConditionView, views.ConditionView),
    "Observation": (ObservationView, views.ObservationView),
    "DiagnosticReport": (DiagnosticReportView, views.DiagnosticReportView),
    "ImagingStudy": (ImagingStudyView, views.ImagingStudyView),
    "ServiceRequest": (ServiceRequestView, views.ServiceRequestView),
}
FIELDS = sorted(
    {name for before, _ in NESTED.values() for name in before.__annotations__}  # the nested ones
)


def _outcome(view: type[views.ResourceView], raw: dict[str, Any]) -> Any:
    try:
        found = view.model_validate(raw)
    except ValidationError as error:
        return "refused", sorted({".".join(map(str, e["loc"])) for e in error.errors()})
    except (ValueError, TypeError) as error:
        return "refused", type(error).__name__
    return "read", _without_nulls(found.model_dump(warnings=False))


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


ODD = [
    None,
    "x",
    5,
    True,
    [],
    {},
    [5],
    ["x"],
    {"coding": "x"},
    {"coding": [5]},
    {"coding": [{}]},
    {"coding": [{"system": 7}]},
    {"coding": [{"code": "a  b"}]},
    {"coding": [{"code": " x"}]},
    {"coding": [{"code": ""}]},
    {"coding": [{"display": ""}]},
    {"coding": [{"system": "a b", "code": "c", "display": "d", "extra": 1}]},
    {"coding": [{"system": "urn:oid:1.2", "code": "x"}, "y"]},
    {"coding": None, "text": None},
    {"text": ""},
    {"text": 7},
    {"text": "headache", "x": [1]},
    {"reference": "Patient/p1"},
    {"reference": 5},
    {"reference": ""},
    {"reference": "Patient/p1", "display": 7},
    [{"text": "a"}, 5],
    [{"coding": [{"code": "x"}]}, {"text": ""}],
]


REPORT = {
    "resourceType": "DiagnosticReport",
    "id": "r1",
    "status": "final",
    "category": [{"coding": [{"system": "http://loinc.org", "code": "LP29684-5"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "24725-4"}], "text": "CT head"},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2026-11-20T10:00:00Z",
    "conclusion": "No acute intracranial haemorrhage.",
    "conclusionCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "281900007"}]}],
}
STUDY = {
    "resourceType": "ImagingStudy",
    "id": "s1",
    "status": "available",
    "subject": {"reference": "Patient/p1"},
    "started": "2026-11-20T10:00:00Z",
    "procedureCode": [{"coding": [{"system": "http://loinc.org", "code": "24558-9"}]}],
    "description": "MRI brain",
    "series": [{"description": "Axial T2", "started": "2026-11-20T10:05:00Z"}],
}


def _resources() -> list[dict[str, Any]]:
    found = [r for r in _all_resources() if r["resourceType"] in NESTED]
    found += [r for r in BAD_ENTRIES + GOOD_ENTRIES if r["resourceType"] in NESTED]
    return [*found, REPORT, STUDY]


def test_every_resource_reads_as_with_nested_models() -> None:
    resources = _resources()
    assert len(resources) > 200
    for raw in resources:
        before, after = NESTED[raw["resourceType"]]
        assert _outcome(after, raw) == _outcome(before, raw), raw


@pytest.mark.parametrize("resource_type", sorted(NESTED))
def test_odd_elements_read_as_with_nested_models(resource_type: str) -> None:
    before, after = NESTED[resource_type]
    bases = [r for r in _resources() if r["resourceType"] == resource_type][:6]
    assert bases
    fields = [f for f in FIELDS if f in before.__annotations__]
    refused = 0
    for raw, field, value in itertools.product(bases, fields, ODD):
        odd = copy.deepcopy(raw)
        odd[field] = copy.deepcopy(value)
        outcome = _outcome(after, odd)
        assert outcome == _outcome(before, odd), (field, value)
        refused += outcome[0] == "refused"
    assert refused > 0
