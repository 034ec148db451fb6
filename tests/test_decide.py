"""Table-driven tests of the clinical decision over realistic FHIR resources (SPEC §2), including the
boundaries: exactly 72 h, time zones, date-only values, entered-in-error records, precedence."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import pytest

from cds_service.knowledge import Knowledge, Scenario
from tests.conftest import NOW
from tests.support.builders import (
    CPT,
    ICD10CM,
    MRI_BRAIN_WWO,
    SNOMED,
    at,
    blood_patch,
    concept,
    condition,
    evaluate_now,
    headache,
    hook_request,
    lumbar_puncture,
    patient,
    pdph,
    procedure,
    service_request,
    temperature,
)
from tests.support.spec_matrix import MATRIX

MRI = service_request("sr-1", MRI_BRAIN_WWO)
ORTHOSTATIC = condition(concept(SNOMED, "445511002", "Orthostatic headache"), at(30))


def local(hours_ago: float, offset_hours: int) -> str:
    zone = timezone(timedelta(hours=offset_hours))
    return (NOW - timedelta(hours=hours_ago)).astimezone(zone).isoformat()


def decision_of(resources: list[dict[str, Any]], order: dict[str, Any] = MRI, **kw: Any) -> Any:
    evaluation = evaluate_now(hook_request([order], resources, **kw))
    return evaluation.decisions[0] if evaluation.decisions else None


CASES: list[tuple[str, list[dict[str, Any]], Scenario | None]] = [
    ("exactly 72 h is acute", [lumbar_puncture(72), pdph()], Scenario.PDPH_ACUTE),
    ("71 h 59 min is acute", [lumbar_puncture(71 + 59 / 60), pdph()], Scenario.PDPH_ACUTE),
    ("72 h 1 min is persistent", [lumbar_puncture(72 + 1 / 60), pdph()], Scenario.PDPH_PERSISTENT),
    ("29 days is persistent", [lumbar_puncture(29 * 24), pdph()], Scenario.PDPH_PERSISTENT),
    (
        "31 days is outside the look-back: SIH",
        [lumbar_puncture(31 * 24), ORTHOSTATIC],
        Scenario.SIH,
    ),
    (
        "a post-puncture diagnosis 20 h old with no puncture in the look-back: silent, never SIH",
        [lumbar_puncture(31 * 24), pdph()],
        None,
    ),
    (
        "-05:00 offset honoured: 74 h ago is persistent (69 h if the offset were dropped)",
        [procedure(concept(CPT, "62270"), local(74, -5)), pdph()],
        Scenario.PDPH_PERSISTENT,
    ),
    (
        "+09:00 offset honoured: 70 h ago is acute (79 h if the offset were dropped)",
        [procedure(concept(CPT, "62270"), local(70, +9)), pdph()],
        Scenario.PDPH_ACUTE,
    ),
    (
        "date-only 3 days ago straddles 72 h (an interval, SPEC §2): uncertain, silent",
        [procedure(concept(CPT, "62270"), (NOW - timedelta(days=3)).date().isoformat()), pdph()],
        None,
    ),
    (
        "date-only yesterday: the whole interval is within 72 h, acute",
        [procedure(concept(CPT, "62270"), (NOW - timedelta(days=1)).date().isoformat()), pdph()],
        Scenario.PDPH_ACUTE,
    ),
    (
        "date-only 4 days ago: persistent",
        [procedure(concept(CPT, "62270"), (NOW - timedelta(days=4)).date().isoformat()), pdph()],
        Scenario.PDPH_PERSISTENT,
    ),
    (
        "period end wins over start",
        [
            procedure(
                concept(CPT, "62270"), None, performedPeriod={"start": at(100), "end": at(70)}
            ),
            pdph(),
        ],
        Scenario.PDPH_ACUTE,
    ),
    (
        "period start when there is no end",
        [procedure(concept(CPT, "62270"), None, performedPeriod={"start": at(80)}), pdph()],
        Scenario.PDPH_PERSISTENT,
    ),
    (
        "entered-in-error puncture ignored",
        [lumbar_puncture(30, status="entered-in-error"), ORTHOSTATIC],
        Scenario.SIH,
    ),
    (
        "not-done puncture ignored",
        [lumbar_puncture(30, status="not-done"), ORTHOSTATIC],
        Scenario.SIH,
    ),
    ("undated puncture: silent", [procedure(concept(CPT, "62270"), None), pdph()], None),
    (
        "most recent of several punctures",
        [lumbar_puncture(200), lumbar_puncture(30), pdph()],
        Scenario.PDPH_ACUTE,
    ),
    (
        "spinal anaesthesia by SNOMED",
        [procedure(concept(SNOMED, "231249005"), at(20)), headache()],
        Scenario.PDPH_ACUTE,
    ),
    (
        "epidural by text only",
        [procedure(concept(text="Labour epidural analgesia"), at(20)), headache()],
        Scenario.PDPH_ACUTE,
    ),
    (
        "blood patch then a new headache: post-blood-patch",
        [lumbar_puncture(150), blood_patch(70), headache(20)],
        Scenario.POST_BLOOD_PATCH,
    ),
    (
        "blood patch, headache only before it: persistent",
        [lumbar_puncture(150), blood_patch(70), headache(140)],
        Scenario.PDPH_PERSISTENT,
    ),
    ("blood patch is not a puncture", [blood_patch(20), ORTHOSTATIC], None),
    (
        "fever exactly 38.0 °C is a red flag",
        [lumbar_puncture(30), headache(), temperature(38.0)],
        Scenario.PDPH_ACUTE_RED_FLAGS,
    ),
    ("37.9 °C is not", [lumbar_puncture(30), headache(), temperature(37.9)], Scenario.PDPH_ACUTE),
    (
        "100.4 °F is 38.0 °C",
        [lumbar_puncture(30), headache(), temperature(100.4, unit="[degF]")],
        Scenario.PDPH_ACUTE_RED_FLAGS,
    ),
    (
        "a fever 4 days ago is outside the window",
        [lumbar_puncture(30), headache(), temperature(39, hours_ago=96)],
        Scenario.PDPH_ACUTE,
    ),
    (
        "an entered-in-error temperature is ignored",
        [lumbar_puncture(30), headache(), temperature(39) | {"status": "entered-in-error"}],
        Scenario.PDPH_ACUTE,
    ),
    (
        "red flags whatever the time since puncture",
        [
            lumbar_puncture(200),
            headache(),
            condition(concept(ICD10CM, "G03.9", "Meningitis"), at(5)),
        ],
        Scenario.PDPH_ACUTE_RED_FLAGS,
    ),
    (
        "altered mental status wins over other red flags",
        [
            lumbar_puncture(30),
            headache(),
            temperature(39),
            condition(concept(ICD10CM, "R41.82"), at(2)),
        ],
        Scenario.ALTERED_MENTAL_STATUS,
    ),
    (
        "seizure by text",
        [lumbar_puncture(30), headache(), condition(concept(text="Generalised seizure"), at(3))],
        Scenario.PDPH_ACUTE_RED_FLAGS,
    ),
    (
        "negated text is not a finding",
        [lumbar_puncture(30), headache(), condition(concept(text="No fever"), at(3))],
        Scenario.PDPH_ACUTE,
    ),
    (
        "refuted headache: silent",
        [lumbar_puncture(30), condition(concept(ICD10CM, "G97.1"), at(20), verification="refuted")],
        None,
    ),
    (
        "entered-in-error headache: silent",
        [
            lumbar_puncture(30),
            condition(concept(ICD10CM, "G97.1"), at(20), verification="entered-in-error"),
        ],
        None,
    ),
    (
        "resolved headache: silent",
        [lumbar_puncture(30), condition(concept(ICD10CM, "G97.1"), at(20), clinical="resolved")],
        None,
    ),
    ("headache older than the look-back: silent", [lumbar_puncture(30), headache(40 * 24)], None),
    (
        "undated but active headache counts",
        [lumbar_puncture(30), condition(concept(SNOMED, "25064002"), None)],
        Scenario.PDPH_ACUTE,
    ),
    ("no headache evidence: silent", [lumbar_puncture(30)], None),
    ("orthostatic headache, no puncture: SIH", [ORTHOSTATIC], Scenario.SIH),
    ("plain headache, no puncture: silent", [headache()], None),
    (
        "ICD-10 code sent without its dot",
        [lumbar_puncture(30), condition(concept(ICD10CM, "G971"), at(20))],
        Scenario.PDPH_ACUTE,
    ),
    (
        "another patient's puncture is ignored",
        [lumbar_puncture(30, subject={"reference": "Patient/someone-else"}), ORTHOSTATIC],
        Scenario.SIH,
    ),
]


@pytest.mark.parametrize(
    ("resources", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_scenario(resources: list[dict[str, Any]], expected: Scenario | None) -> None:
    decision = decision_of(resources)
    assert (decision.scenario if decision else None) == expected


@pytest.mark.parametrize(
    ("reason", "problem_list", "expected"),
    [
        (concept(ICD10CM, "G35.D", "Multiple sclerosis"), [pdph()], None),
        (concept(text="Trauma: fall from ladder"), [pdph()], None),
        (concept(ICD10CM, "M54.50", "Low back pain"), [pdph()], None),
        (concept(ICD10CM, "G97.1"), [], Scenario.PDPH_ACUTE),
        (concept(text="post-LP headache"), [], Scenario.PDPH_ACUTE),
        (concept(text="Headache and fever"), [], Scenario.PDPH_ACUTE_RED_FLAGS),
        (concept(ICD10CM, "G44.53", "Thunderclap headache"), [], Scenario.THUNDERCLAP),
    ],
)
def test_order_reason_governs(
    reason: dict[str, Any], problem_list: list[dict[str, Any]], expected: Scenario | None
) -> None:
    order = service_request("sr-1", MRI_BRAIN_WWO, reason=reason)
    decision = decision_of([lumbar_puncture(30), *problem_list], order)
    assert (decision.scenario if decision else None) == expected


def test_reason_reference_resolved_against_conditions() -> None:
    ms = condition(concept(ICD10CM, "G35.D"), at(100)) | {"id": "ms-1"}
    order = service_request(
        "sr-1", MRI_BRAIN_WWO, reasonReference=[{"reference": "Condition/ms-1"}]
    )
    assert decision_of([lumbar_puncture(30), pdph(), ms], order) is None
    headache_ref = headache() | {"id": "ha-1"}
    order = service_request(
        "sr-1", MRI_BRAIN_WWO, reasonReference=[{"reference": "Condition/ha-1"}]
    )
    assert decision_of([lumbar_puncture(30), headache_ref], order).scenario is Scenario.PDPH_ACUTE


@pytest.mark.parametrize(
    ("birth_date", "silent"),
    [
        ((NOW - timedelta(days=17 * 365)).date().isoformat(), True),
        ("2008-11-25", True),  # turns 18 tomorrow
        ("2008-11-24", False),  # 18 today
        ("2008", True),  # year only: could still be 17
        (None, False),  # unknown: evaluated as an adult
    ],
)
def test_adults_only(birth_date: str | None, silent: bool) -> None:
    request = hook_request([MRI], [lumbar_puncture(30), pdph()])
    request["prefetch"]["patient"] = patient(birth_date)
    evaluation = evaluate_now(request)
    assert (not evaluation.decisions) is silent


def test_hours_since_puncture_reported() -> None:
    decision = decision_of([lumbar_puncture(50.25), pdph()])
    assert decision.hours_since_puncture == pytest.approx(50.25, abs=0.051)


def test_thresholds_overridable_by_settings() -> None:
    request = hook_request([MRI], [lumbar_puncture(60), pdph()])
    assert evaluate_now(request).decisions[0].scenario is Scenario.PDPH_ACUTE
    narrowed = evaluate_now(request, acute_window_hours=48)
    assert narrowed.decisions[0].scenario is Scenario.PDPH_PERSISTENT
    febrile = hook_request([MRI], [lumbar_puncture(30), pdph(), temperature(37.8)])
    assert (
        evaluate_now(febrile, fever_celsius=37.5).decisions[0].scenario
        is Scenario.PDPH_ACUTE_RED_FLAGS
    )


SCENARIOS = list(Scenario)


@pytest.mark.parametrize("study_type", sorted(MATRIX))
def test_rating_matrix_matches_spec(study_type: str, knowledge: Knowledge) -> None:
    observed = tuple(knowledge.rating(s, study_type).value.value for s in SCENARIOS)
    assert observed == MATRIX[study_type]


def test_scenario_order_is_the_matrix_order() -> None:
    assert [s.value for s in SCENARIOS] == [
        "pdph-acute",
        "pdph-acute-red-flags",
        "pdph-persistent",
        "sih",
        "post-blood-patch",
        "altered-mental-status",
        "thunderclap",
        "sih-after-initial-imaging",
    ]


def test_variant_ratings_match_spec(knowledge: Knowledge) -> None:
    """SPEC §2: after a DSM since the puncture CT myelography is MBA (S), the rest unchanged; a repeat
    of an MRI already done is NR."""
    after_dsm = "dsm-done-since-puncture"
    persistent = Scenario.PDPH_PERSISTENT
    assert knowledge.rating(persistent, "ct-myelography", after_dsm).rating == "MBA"
    assert knowledge.rating(persistent, "ct-myelography", after_dsm).source == "S"
    for study in MATRIX:
        if study != "ct-myelography":
            assert knowledge.rating(persistent, study, after_dsm) == knowledge.rating(
                persistent, study
            )
    repeat = "repeat-of-recent-mri"
    after_imaging = Scenario.SIH_AFTER_INITIAL_IMAGING
    assert {knowledge.rating(after_imaging, s, repeat).rating for s in MATRIX} == {"NR"}
