"""The screens that keep a large record cheap (an old Condition or radiology report skipped before
validation by its raw times, a concept's recognition memoised by what recognition reads of it, the
patient's own reference compared whole) change no fact: on every fixture, the benchmark's payloads
and the cases a screen could get wrong, the facts read with the screens equal the facts read without
them, and the screens do skip what they are for."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

import cds_service.knowledge.terminology as terminology
import cds_service.pipeline.facts as facts
import cds_service.pipeline.history as history
from bench.payloads import large_patient_request, scaled_request
from cds_service.fhir.views import ConditionView, DiagnosticReportView, Parsed, read_resources
from cds_service.knowledge import Knowledge
from cds_service.pipeline.domain import PatientFacts
from cds_service.pipeline.resolve import prefetch_resources
from cds_tools.fixtures import fixture_paths, load_fixture
from tests.support.builders import ICD10CM, PID, at, concept, condition, ct_report
from tests.support.clock import NOW


@contextmanager
def unscreened() -> Iterator[None]:
    """No raw-time screen, no concept memo, the patient's reference always parsed."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(facts, "surely_before", lambda value, oldest: False)
        mp.setattr(history, "surely_before", lambda value, oldest: False)
        mp.setattr(terminology, "_keys", lambda c, key, index: terminology._match(c, index))
        mp.setattr(
            facts,
            "problem_codes",
            lambda c, k: (terminology.match(c, k.findings), terminology.has_standard_code(c, k)),
        )
        mp.setattr(facts, "_by_type", by_type_parsed)
        yield


def _is_for_patient(resource: dict[str, Any], patient_id: str) -> bool:
    """The definition: a resource is the patient's unless its subject (or `patient`) reference
    parses as another Patient's."""
    subject = resource.get("subject") or resource.get("patient")
    if not isinstance(subject, dict):
        return True
    reference = subject.get("reference")
    if not isinstance(reference, str) or "Patient/" not in reference:
        return True
    return reference.rsplit("Patient/", 1)[1].split("/")[0] == patient_id


def by_type_parsed(
    resources: dict[str, list[dict[str, Any]]], patient_id: str
) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """facts._by_type as defined: every reference parsed."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    dropped = 0
    for key in resources:
        for r in resources[key]:
            resource_type = r.get("resourceType")
            if not isinstance(resource_type, str):
                continue
            if _is_for_patient(r, patient_id):
                by_type.setdefault(resource_type, []).append(r)
            else:
                dropped += 1
    return by_type, dropped


def read(resources: dict[str, list[dict[str, Any]]], patient_id: str, k: Knowledge) -> PatientFacts:
    return facts.patient_facts(resources, patient_id, k, NOW, k.rules.thresholds)


def both(
    resources: dict[str, list[dict[str, Any]]], k: Knowledge, patient_id: str = PID
) -> PatientFacts:
    """The facts read with the screens, checked equal to the facts read without them."""
    screened = read(resources, patient_id, k)
    with unscreened():
        plain = read(resources, patient_id, k)
    assert screened == plain
    return screened


def _resources(request: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        key: prefetch_resources(value) or []
        for key, value in (request.get("prefetch") or {}).items()
    }


def test_every_fixture_and_payload_reads_the_same_facts_screened(knowledge: Knowledge) -> None:
    requests = [load_fixture(path, NOW)["request"] for path in fixture_paths()]
    requests += [large_patient_request(NOW), scaled_request(NOW, 5000, seed=7)]
    assert len(requests) > 40
    for request in requests:
        both(_resources(request), knowledge, request["context"]["patientId"])


def test_the_screens_skip_old_rows_before_validating_them(
    knowledge: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not vacuous: the large patient's old problems and reports are refused before validation."""
    validated: list[str] = []
    for view in (ConditionView, DiagnosticReportView):
        plain = view.model_validate

        def counting(raw: Any, *args: Any, plain: Any = plain, **kwargs: Any) -> Any:
            validated.append(raw["resourceType"])
            return plain(raw, *args, **kwargs)

        monkeypatch.setattr(view, "model_validate", counting)
    resources = _resources(large_patient_request(NOW))
    read(resources, "pat-seed-45f", knowledge)
    screened = len(validated)
    validated.clear()
    with unscreened():
        read(resources, "pat-seed-45f", knowledge)
    assert screened < len(validated) / 4, (screened, len(validated))


def _days(days: float) -> str:
    return at(days * 24)


def _conditions(*items: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {"conditions": list(items)}


OID_ICD10CM = "urn:oid:2.16.840.1.113883.6.90"
CASES: dict[str, tuple[dict[str, Any], bool]] = {
    # (the Condition, whether it is a finding of the patient)
    "a code under an OID alias, old but durable": (
        condition({"coding": [{"system": OID_ICD10CM, "code": "G97.1"}]}, _days(400)),
        True,
    ),
    "a code under an OID alias, recent": (
        condition({"coding": [{"system": OID_ICD10CM, "code": "G97.1"}]}, _days(3)),
        True,
    ),
    "a recognised code under an unknown system, read by its words": (
        condition(
            {"coding": [{"system": "http://example.org/dx", "code": "G97.1"}], "text": "PDPH"},
            _days(3),
        ),
        True,
    ),
    "words only, recent": (condition(concept(text="Nuchal rigidity"), _days(2)), True),
    "words only, old and not durable": (
        condition(concept(text="Nuchal rigidity"), _days(90)),
        False,
    ),
    "words only, old and durable": (
        condition(concept(text="Intracranial hypotension"), _days(900)),
        True,
    ),
    "entered in error": (
        condition(concept(ICD10CM, "G97.1"), _days(3), verification="entered-in-error"),
        False,
    ),
    "undated and active": (condition(concept(text="Nuchal rigidity"), None), True),
    "an onset with no UTC equivalent: undated, active": (
        condition(concept(text="Nuchal rigidity"), "0001-01-01T00:00:00+05:00"),
        True,
    ),
    "an old onset but a recent time without offset (read first)": (
        condition(concept(text="Nuchal rigidity"), _days(90))
        | {"recordedDate": (NOW - timedelta(hours=30)).strftime("%Y-%m-%dT%H:%M:%S")},
        True,
    ),
    "an old onset period, recorded recently (the onset dates it)": (
        {
            **condition(concept(text="Nuchal rigidity"), None),
            "onsetPeriod": {"start": _days(90)},
            "recordedDate": _days(1),
        },
        False,
    ),
    "old, only an onset string and an old recorded date": (
        {
            **condition(concept(text="Nuchal rigidity"), None),
            "onsetString": "last spring",
            "recordedDate": _days(90),
        },
        False,
    ),
    "a date-only onset just inside the look-back": (
        condition(concept(text="Nuchal rigidity"), (NOW - timedelta(days=30)).date().isoformat()),
        True,
    ),
    "old, with an unparseable time (invalid, skipped)": (
        {**condition(concept(text="Nuchal rigidity"), _days(90)), "recordedDate": "spring 2020"},
        False,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_condition_a_screen_could_misread_is_read_alike(knowledge: Knowledge, case: str) -> None:
    resource, counted = CASES[case]
    found = both(_conditions(resource), knowledge)
    assert bool(found.findings) is counted, found.findings


def test_a_recent_problem_in_words_is_still_read_for_the_fail_safe(knowledge: Knowledge) -> None:
    """A Condition without a standard code, recorded in the observation window, has its words read
    (UnreadWords); an old one is screened, as it was dropped after validation."""
    recent = condition(concept(text="Zebra stripes"), _days(1))
    old = condition(concept(text="Zebra stripes"), _days(10))
    assert both(_conditions(recent), knowledge).unread
    assert not both(_conditions(old), knowledge).unread


@pytest.mark.parametrize(
    ("times", "kept"),
    [
        ({"effectiveDateTime": _days(100)}, True),
        ({"effectiveDateTime": _days(200)}, False),
        ({"effectiveDateTime": _days(200), "issued": _days(1)}, False),  # effective dates it
        ({"effectivePeriod": {"start": _days(200), "end": _days(100)}}, True),
        ({"effectivePeriod": {"start": _days(200)}, "issued": _days(300)}, False),
        ({"issued": _days(100)}, True),
        ({"effectiveDateTime": "0001-01-01T00:00:00+05:00"}, False),
    ],
)
def test_a_report_is_kept_or_screened_as_validated(
    knowledge: Knowledge, times: dict[str, Any], kept: bool
) -> None:
    report = ct_report("No acute abnormality.")
    del report["effectiveDateTime"]
    report |= times
    found = both({"imagingReports": [report]}, knowledge)
    assert bool(found.studies) is kept, found.studies


@pytest.mark.parametrize("patient_id", [PID, "a/b", "Patient/x", "x y"])
def test_resources_are_sorted_to_the_patient_as_parsed(patient_id: str) -> None:
    references: list[Any] = [
        f"Patient/{patient_id}",
        f"https://ehr.example/fhir/Patient/{patient_id}/_history/2",
        "Patient/other",
        f"Patient/{patient_id}x",
        f"xPatient/{patient_id}",
        "Group/g1",
        "",
        None,
        5,
        ["Patient/other"],
        "Patient/a/b",
        "Patient/Patient/x",
    ]
    rows: list[dict[str, Any]] = [
        {"resourceType": "Condition", "subject": {"reference": reference}}
        for reference in references
    ]
    rows += [{"resourceType": "Condition", "patient": {"reference": r}} for r in references]
    rows += [{"resourceType": "Condition", "subject": "Patient/other"}, {"resourceType": 5}, {}]
    resources = {"conditions": rows}
    assert facts._by_type(resources, patient_id) == by_type_parsed(resources, patient_id)
    for path in fixture_paths():
        request = load_fixture(path, NOW)["request"]
        pid = request["context"]["patientId"]
        assert facts._by_type(_resources(request), pid) == by_type_parsed(_resources(request), pid)


def test_the_patients_reference_is_compared_as_parsed(knowledge: Knowledge) -> None:
    mine = condition(concept(text="Nuchal rigidity"), _days(1))
    theirs = mine | {"subject": {"reference": "Patient/someone-else"}}
    versioned = mine | {
        "subject": {"reference": f"https://ehr.example/fhir/Patient/{PID}/_history/2"}
    }
    assert len(both(_conditions(mine, theirs, versioned), knowledge).findings) == 2
    # An id with a "/" is never the whole reference's tail: the parsed comparison decides.
    both(_conditions(mine | {"subject": {"reference": "Patient/a/b"}}), knowledge, "a/b")


def test_recognition_of_concepts_with_unhashable_values_is_unchanged(knowledge: Knowledge) -> None:
    odd = [
        {"text": ["headache"]},
        {"coding": [{"system": ICD10CM, "code": ["G97.1"]}], "text": "Nuchal rigidity"},
        {"coding": [{"system": {"x": 1}, "code": "G97.1", "display": "headache"}]},
    ]
    for value in odd:
        memoised = terminology.match(value, knowledge.findings)
        assert memoised == terminology._match(value, knowledge.findings)
        assert terminology.match(value, knowledge.findings) == memoised


def test_old_rows_screened_do_not_lose_a_recent_finding(knowledge: Knowledge) -> None:
    """A large problem list of old rows around one recent red flag: the red flag is read."""
    old = [condition(concept(text="Nuchal rigidity"), _days(40 + i)) for i in range(50)]
    recent = condition(concept(text="Nuchal rigidity"), _days(1))
    found = both(_conditions(*old[:25], recent, *old[25:]), knowledge)
    assert [f.kind for f in found.findings] == ["nuchal-rigidity"]


def read_lenient(
    raw: list[dict[str, Any]], keep: Callable[[dict[str, Any]], bool]
) -> list[Parsed[ConditionView]]:
    """One reading apart, as each was read before: validated, and a second chance for a resource
    refused only for a time written without an offset."""
    invalid: list[dict[str, Any]] = []
    parsed = read_resources(raw, ConditionView, keep, invalid)
    for sent in invalid:
        fixed = facts._offset_naive_times(sent)
        if fixed is not None:
            parsed += [
                Parsed(sent, item.model) for item in read_resources([fixed], ConditionView, keep)
            ]
    return parsed


def test_two_readings_at_once_read_what_each_reads_apart() -> None:
    """_read_lenient_wanted (two readings of one type, one validation each) gives each reading
    exactly what it gets read apart, second chances for naive times included."""
    naive = (NOW - timedelta(hours=30)).strftime("%Y-%m-%dT%H:%M:%S")
    rows = [
        condition(concept(text="Nuchal rigidity"), _days(1)),
        condition(concept(ICD10CM, "G97.1"), naive),
        condition(concept(text="Zebra"), naive) | {"recordedDate": "not a date"},
        condition(concept(text="Zebra"), None) | {"recordedDate": naive},
        {"resourceType": "Condition", "code": {"text": "no subject"}},
        condition(concept(ICD10CM, "I10"), _days(400)),
    ]
    rows += [
        r
        for path in fixture_paths()
        for r in _resources(load_fixture(path, NOW)["request"]).get("conditions", [])
    ]

    def first(resource: dict[str, Any]) -> bool:
        return "onsetDateTime" in resource

    def second(resource: dict[str, Any]) -> bool:
        return "coding" not in (resource.get("code") or {}) or "recordedDate" in resource

    wanted: dict[int, tuple[bool, bool]] = {}

    def either(resource: dict[str, Any]) -> bool:
        flags = (first(resource), second(resource))
        wanted[id(resource)] = flags
        return any(flags)

    both_read = facts._read_lenient_wanted(rows, ConditionView, either, wanted)
    for index, keep in enumerate((first, second)):
        alone = read_lenient(rows, keep)
        together = [item for item, flags in both_read if flags[index]]
        assert [(id(i.raw), i.model) for i in together] == [(id(i.raw), i.model) for i in alone]
    assert any(item.raw["code"].get("text") == "Zebra" for item, _ in both_read)
