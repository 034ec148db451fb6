"""Imaging history (SPEC §2): what was already done changes the advice. Table-driven over the three
shapes an EHR records a study in: DiagnosticReport, ImagingStudy and Procedure."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cds_service.knowledge import Scenario
from tests.conftest import NOW
from tests.support.builders import (
    CPT,
    LOINC,
    MRI_BRAIN_WWO,
    PID,
    SNOMED,
    at,
    concept,
    condition,
    evaluate_now,
    headache,
    hook_request,
    lumbar_puncture,
    pdph,
    procedure,
    service_request,
)

RADIOLOGY = {"coding": [{"system": "http://loinc.org", "code": "LP29684-5"}]}
RAD = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}
ORTHOSTATIC = condition(concept(SNOMED, "445511002", "Orthostatic headache"), at(24 * 10))
DSM = service_request(
    "sr-1", concept(CPT, "72270", "Myelography, digital subtraction, complete spine")
)
CT_MYELO = service_request("sr-1", concept(LOINC, "47985-7", "CT myelogram complete spine"))


def report(
    code: dict[str, Any], hours_ago: float, status: str = "final", **extra: Any
) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "status": status,
        "category": [RADIOLOGY],
        "code": code,
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": at(hours_ago),
    } | extra


def imaging_study(
    code: dict[str, Any], hours_ago: float, status: str = "available"
) -> dict[str, Any]:
    return {
        "resourceType": "ImagingStudy",
        "status": status,
        "subject": {"reference": f"Patient/{PID}"},
        "started": at(hours_ago),
        "procedureCode": [code],
    }


MRI_DONE = concept(CPT, "70553", "MRI brain without and with contrast")
DAYS = 24


def decide(resources: list[dict[str, Any]], order: dict[str, Any], **kw: Any) -> Any:
    evaluation = evaluate_now(hook_request([order], resources, hook="order-select"), **kw)
    return evaluation


CASES = [
    (
        "DiagnosticReport final, 20 days",
        [ORTHOSTATIC, report(MRI_DONE, 20 * DAYS)],
        DSM,
        Scenario.SIH_AFTER_INITIAL_IMAGING,
        "usually-appropriate",
    ),
    (
        "DiagnosticReport under v2-0074 RAD",
        [ORTHOSTATIC, report(MRI_DONE, 20 * DAYS, category=[RAD])],
        DSM,
        Scenario.SIH_AFTER_INITIAL_IMAGING,
        "usually-appropriate",
    ),
    (
        "DiagnosticReport amended, date only",
        [
            ORTHOSTATIC,
            report(
                MRI_DONE,
                0,
                "amended",
                effectiveDateTime=(NOW - timedelta(days=9)).date().isoformat(),
            ),
        ],
        DSM,
        Scenario.SIH_AFTER_INITIAL_IMAGING,
        "usually-appropriate",
    ),
    (
        "ImagingStudy available, LOINC code",
        [ORTHOSTATIC, imaging_study(concept(LOINC, "24587-8"), 20 * DAYS)],
        DSM,
        Scenario.SIH_AFTER_INITIAL_IMAGING,
        "usually-appropriate",
    ),
    (
        "Procedure completed, MRI lumbar spine",
        [ORTHOSTATIC, procedure(concept(CPT, "72148", "MRI lumbar spine"), at(30 * DAYS))],
        DSM,
        Scenario.SIH_AFTER_INITIAL_IMAGING,
        "usually-appropriate",
    ),
    (
        "CT myelography after initial MRI: may be appropriate",
        [ORTHOSTATIC, report(MRI_DONE, 20 * DAYS)],
        CT_MYELO,
        Scenario.SIH_AFTER_INITIAL_IMAGING,
        "may-be-appropriate",
    ),
    (
        "entered-in-error report ignored",
        [ORTHOSTATIC, report(MRI_DONE, 20 * DAYS, "entered-in-error")],
        DSM,
        Scenario.SIH,
        "usually-not-appropriate",
    ),
    (
        "cancelled report ignored",
        [ORTHOSTATIC, report(MRI_DONE, 20 * DAYS, "cancelled")],
        DSM,
        Scenario.SIH,
        "usually-not-appropriate",
    ),
    (
        "ImagingStudy cancelled ignored",
        [ORTHOSTATIC, imaging_study(concept(LOINC, "24587-8"), 20 * DAYS, "cancelled")],
        DSM,
        Scenario.SIH,
        "usually-not-appropriate",
    ),
    (
        "MRI 200 days ago: outside the 180-day look-back",
        [ORTHOSTATIC, report(MRI_DONE, 200 * DAYS)],
        DSM,
        Scenario.SIH,
        "usually-not-appropriate",
    ),
    (
        "a CT head is not initial imaging for SIH",
        [ORTHOSTATIC, report(concept(CPT, "70450"), 20 * DAYS)],
        DSM,
        Scenario.SIH,
        "usually-not-appropriate",
    ),
    (
        "repeat of the MRI brain: not rated",
        [ORTHOSTATIC, report(MRI_DONE, 20 * DAYS)],
        service_request("sr-1", MRI_BRAIN_WWO),
        Scenario.SIH_AFTER_INITIAL_IMAGING,
        "not-rated",
    ),
    (
        "MRI complete spine repeats an MRI lumbar spine",
        [ORTHOSTATIC, report(concept(CPT, "72148"), 20 * DAYS)],
        service_request("sr-1", concept(text="MRI whole spine w/wo")),
        Scenario.SIH_AFTER_INITIAL_IMAGING,
        "not-rated",
    ),
    (
        "MRI spine not yet done after an MRI brain: usually appropriate",
        [ORTHOSTATIC, report(MRI_DONE, 20 * DAYS)],
        service_request("sr-1", concept(text="MRI whole spine w/wo")),
        Scenario.SIH_AFTER_INITIAL_IMAGING,
        "usually-appropriate",
    ),
    (
        "persistent PDPH after a DSM: CT myelography may be appropriate",
        [
            lumbar_puncture(8 * DAYS),
            pdph(7 * DAYS),
            report(concept(CPT, "72270", "DSM complete spine"), 2 * DAYS),
        ],
        CT_MYELO,
        Scenario.PDPH_PERSISTENT,
        "may-be-appropriate",
    ),
    (
        "persistent PDPH, a DSM before the puncture does not count",
        [
            lumbar_puncture(5 * DAYS),
            pdph(4 * DAYS),
            report(concept(CPT, "72270", "DSM complete spine"), 9 * DAYS),
        ],
        CT_MYELO,
        Scenario.PDPH_PERSISTENT,
        "usually-not-appropriate",
    ),
    (
        "a DSM Procedure after the headache is history, not a new puncture",
        [
            lumbar_puncture(8 * DAYS),
            pdph(7 * DAYS),
            procedure(concept(CPT, "62305", "Digital subtraction myelography"), at(2 * DAYS)),
        ],
        CT_MYELO,
        Scenario.PDPH_PERSISTENT,
        "may-be-appropriate",
    ),
    (
        "a myelography with no headache before it is a puncture",
        [procedure(concept(CPT, "62305", "Digital subtraction myelography"), at(30)), headache(20)],
        service_request("sr-1", MRI_BRAIN_WWO),
        Scenario.PDPH_ACUTE,
        "usually-not-appropriate",
    ),
]


@pytest.mark.parametrize(
    ("resources", "order", "scenario", "rating"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_imaging_history(
    resources: list[dict[str, Any]], order: dict[str, Any], scenario: Scenario, rating: str
) -> None:
    [decision] = decide(resources, order).decisions
    assert (decision.scenario, decision.rating.value.value) == (scenario, rating)


def test_repeat_mri_gets_an_info_card_naming_the_earlier_study() -> None:
    done = report(MRI_DONE, 20 * DAYS, conclusion="No evidence of intracranial hypotension.")
    body = decide(
        [ORTHOSTATIC, done], service_request("sr-1", MRI_BRAIN_WWO)
    ).response.to_json_dict()
    [card] = body["cards"]
    assert card["indicator"] == "info"
    date = (NOW - timedelta(days=20)).date().isoformat()
    assert f"on {date} (No evidence of intracranial hypotension.)" in card["detail"]
    [suggestion] = card["suggestions"]
    assert suggestion["label"] == "Add digital subtraction myelography (DSM) of the complete spine"
    assert "no-criteria-apply" in str(body["systemActions"])


def test_a_long_conclusion_is_cut_to_160_characters_with_an_ellipsis() -> None:
    long = "No evidence of intracranial hypotension. " + "Normal-study." * 20
    done = report(MRI_DONE, 20 * DAYS, conclusion=long)
    body = decide(
        [ORTHOSTATIC, done], service_request("sr-1", MRI_BRAIN_WWO)
    ).response.to_json_dict()
    [card] = body["cards"]
    quoted = card["detail"].split("(", 1)[1].split(")", 1)[0]
    assert len(quoted) == 160 and quoted.endswith("Normal-study.N…")
    assert long.startswith(quoted[:-1])


def test_after_a_dsm_the_replacement_is_ct_myelography_never_a_second_dsm() -> None:
    history = [
        lumbar_puncture(8 * DAYS),
        pdph(7 * DAYS),
        report(concept(CPT, "72270", "DSM complete spine"), 2 * DAYS),
    ]
    body = decide(history, service_request("sr-1", MRI_BRAIN_WWO)).response.to_json_dict()
    [card] = body["cards"]
    assert card["indicator"] == "warning"
    [suggestion] = card["suggestions"]
    created = [
        a["resource"]["code"]["text"] for a in suggestion["actions"] if a["type"] == "create"
    ]
    assert created == ["CT myelography of the complete spine, delayed phase"]
    second_dsm = decide(history, DSM, confirm_appropriate_orders=True).response.to_json_dict()
    [info] = second_dsm["cards"]
    assert info["indicator"] == "info" and "already done" in info["summary"]
    assert "suggestions" not in info


def test_no_suggestion_recreates_a_study_done_in_the_last_30_days() -> None:
    # The DSM was done 20 days ago, before this puncture: the persistent card still warns, but does
    # not propose another DSM.
    history = [
        lumbar_puncture(5 * DAYS),
        pdph(4 * DAYS),
        report(concept(CPT, "72270", "DSM complete spine"), 20 * DAYS),
    ]
    body = decide(history, service_request("sr-1", MRI_BRAIN_WWO)).response.to_json_dict()
    [card] = body["cards"]
    assert card["source"]["topic"]["code"] == "pdph-persistent"
    assert "suggestions" not in card
    # With the window at 10 days the DSM is old enough to be proposed again.
    wider = decide(history, service_request("sr-1", MRI_BRAIN_WWO), recent_study_days=10)
    assert wider.response.to_json_dict()["cards"][0]["suggestions"]


def test_only_head_and_spine_reports_are_validated_and_a_bad_one_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A report of other imaging (a chest X-ray) is screened out before validation: its bad date is
    nobody's concern. A head MRI report with a bad date is skipped and logged, never used."""
    chest = report(concept(LOINC, "36643-5", "XR Chest 2 Views"), 2 * DAYS)
    chest["effectiveDateTime"] = "2026-13-45"
    head = report(MRI_DONE, 20 * DAYS)
    head["effectiveDateTime"] = "not a date"
    caplog.set_level("WARNING")
    evaluation = decide([ORTHOSTATIC, chest, head], service_request("sr-1", MRI_BRAIN_WWO))
    skipped = [r for r in caplog.records if r.getMessage() == "resource_skipped"]
    assert [r.__dict__["resource_type"] for r in skipped] == ["DiagnosticReport"]
    # The unreadable report is not imaging history: the first MRI for suspected SIH, not a repeat.
    assert [d.scenario for d in evaluation.decisions] == [Scenario.SIH]
