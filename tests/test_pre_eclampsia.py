"""Pre-eclampsia, the obstetric population's red flag (SPEC §2; ACOG Practice Bulletin 222, 2020;
ACC/AHA 2017): a headache in pregnancy or within 6 weeks of delivery is never called PDPH while
pre-eclampsia with severe features is possible. Blood pressure Observations as EHRs send them, the
pregnant or postpartum context from Conditions, Procedures and the order's words, the severe-feature
symptoms, and the card that names the obstetric work-up."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.knowledge import Knowledge, Scenario
from cds_service.knowledge.terminology import match
from tests.support.builders import (
    CPT,
    ICD10CM,
    LOINC,
    MRI_BRAIN_WWO,
    PID,
    SNOMED,
    action_types,
    at,
    concept,
    condition,
    created_codes,
    evaluate_now,
    headache,
    hook_request,
    procedure,
    service_request,
)

CT_HEAD = concept(CPT, "70450", "CT head without contrast")
LABOUR_EPIDURAL = procedure(concept(CPT, "01967", "Labor epidural"), at(30))
OID_LOINC = "urn:oid:2.16.840.1.113883.6.1"
POSTPARTUM = condition(concept(ICD10CM, "Z39.2", "Routine postpartum follow-up"), at(40))


def pressure_panel(
    systolic: float | None, diastolic: float | None, hours_ago: float = 2, unit: str = "mm[Hg]"
) -> dict[str, Any]:
    """A US Core / FHIR vital-signs blood pressure: the 85354-9 panel with its two components."""
    components = [
        {
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "valueQuantity": {
                "value": v,
                "unit": unit,
                "code": unit,
                "system": "http://unitsofmeasure.org",
            },
        }
        for code, v in (("8480-6", systolic), ("8462-4", diastolic))
        if v is not None
    ]
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}], "text": "Blood pressure"},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": at(hours_ago),
        "component": components,
    }


def single(code: str, value: float, system: str = LOINC, hours_ago: float = 2) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": at(hours_ago),
        "valueQuantity": {"value": value, "unit": "mmHg"},
    }


def flowsheet(name: str, value: str, hours_ago: float = 2) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": name},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": at(hours_ago),
        "valueString": value,
    }


def decide(*resources: dict[str, Any], order: dict[str, Any] | None = None) -> Any:
    order = order or service_request("sr-1", CT_HEAD, concept(text="headache after epidural"))
    evaluation = evaluate_now(
        hook_request([order], [*resources], hook="order-select"), confirm_appropriate_orders=True
    )
    return evaluation


def scenario(*resources: dict[str, Any], order: dict[str, Any] | None = None) -> Scenario | None:
    evaluation = decide(*resources, order=order)
    return evaluation.decisions[0].scenario if evaluation.decisions else None


RED_FLAGS = Scenario.PDPH_ACUTE_RED_FLAGS
ACUTE = Scenario.PDPH_ACUTE

# (what, record beside a headache 30 h after a labour epidural, expected scenario)
BLOOD_PRESSURES = [
    ("postpartum, panel 168/112", [POSTPARTUM, pressure_panel(168, 112)], RED_FLAGS),
    ("postpartum, exactly 160/90", [POSTPARTUM, pressure_panel(160, 90)], RED_FLAGS),
    ("postpartum, exactly 130/110", [POSTPARTUM, pressure_panel(130, 110)], RED_FLAGS),
    (
        "postpartum, 159/109 is below the severe range",
        [POSTPARTUM, pressure_panel(159, 109)],
        ACUTE,
    ),
    ("postpartum, systolic alone 8480-6", [POSTPARTUM, single("8480-6", 172)], RED_FLAGS),
    (
        "postpartum, diastolic alone under the LOINC OID",
        [POSTPARTUM, single("8462-4", 114, OID_LOINC)],
        RED_FLAGS,
    ),
    ("postpartum, kPa", [POSTPARTUM, pressure_panel(22, 15, unit="kPa")], RED_FLAGS),
    ("postpartum, flowsheet 'BP' '168/112'", [POSTPARTUM, flowsheet("BP", "168/112")], RED_FLAGS),
    (
        "postpartum, severe pressure 4 days ago is outside the window",
        [POSTPARTUM, pressure_panel(170, 115, hours_ago=100)],
        ACUTE,
    ),
    ("no obstetric context: 165/112 is no red flag", [pressure_panel(165, 112)], ACUTE),
    ("any adult: 182/100 is a hypertensive emergency", [pressure_panel(182, 100)], RED_FLAGS),
    ("any adult: 150/120 is a hypertensive emergency", [pressure_panel(150, 120)], RED_FLAGS),
    ("any adult: 179/119 is not", [pressure_panel(179, 119)], ACUTE),
    (
        "an unreadable unit is ignored",
        [POSTPARTUM, pressure_panel(170, 115, unit="cm[H2O]")],
        ACUTE,
    ),
]


def _lp_headache() -> list[dict[str, Any]]:
    return [procedure(concept(CPT, "62270", "Lumbar puncture"), at(30)), headache()]


@pytest.mark.parametrize(
    ("record", "expected"), [b[1:] for b in BLOOD_PRESSURES], ids=[b[0] for b in BLOOD_PRESSURES]
)
def test_blood_pressure(record: list[dict[str, Any]], expected: Scenario) -> None:
    assert scenario(*_lp_headache(), *record) is expected


# The pregnant or postpartum context, with a pressure of 165/112 (severe range, not an emergency).
SEVERE = pressure_panel(165, 112)
CONTEXTS = [
    (
        "ICD-10-CM O chapter, a code-only leaf under the OID",
        [condition(concept("urn:oid:2.16.840.1.113883.6.90", "O99891"), at(40))],
        True,
    ),
    ("Z3A weeks of gestation", [condition(concept(ICD10CM, "Z3A.36"), at(400))], True),
    ("SNOMED mid postpartum state", [condition(concept(SNOMED, "42814007"), at(30))], True),
    (
        "'3 days postpartum' in a Condition's words",
        [condition(concept(text="3 days postpartum"), at(30))],
        True,
    ),
    (
        "caesarean delivery 10 days ago (CPT 59514)",
        [procedure(concept(CPT, "59514"), at(240))],
        True,
    ),
    (
        "vaginal delivery 43 days ago is no longer postpartum",
        [procedure(concept(CPT, "59409"), at(43 * 24))],
        False,
    ),
    ("labour epidural (CPT 01967)", [LABOUR_EPIDURAL], True),
    (
        "resolved pregnancy condition",
        [condition(concept(ICD10CM, "Z33.1"), at(30), clinical="resolved")],
        False,
    ),
    (
        "family history code is not the patient's pregnancy",
        [condition(concept(ICD10CM, "Z82.3"), at(30))],
        False,
    ),
]


@pytest.mark.parametrize(
    ("record", "obstetric"), [c[1:] for c in CONTEXTS], ids=[c[0] for c in CONTEXTS]
)
def test_pregnant_or_postpartum_context(record: list[dict[str, Any]], obstetric: bool) -> None:
    expected = RED_FLAGS if obstetric else ACUTE
    assert scenario(*_lp_headache(), *record, SEVERE) is expected


ORDER_WORDS = [
    "postpartum headache",
    "headache PPD 3",
    "G2P2 day 2 post C-section, headache",
    "headache after labour epidural, 34 weeks pregnant",
    "post-partum headache",
]


@pytest.mark.parametrize("reason", ORDER_WORDS)
def test_the_order_says_pregnant_or_postpartum(reason: str) -> None:
    order = service_request("sr-1", CT_HEAD, concept(text=reason))
    assert scenario(*_lp_headache(), SEVERE, order=order) is RED_FLAGS


SEVERE_FEATURES = [
    "RUQ pain",
    "epigastric pain",
    "right upper quadrant tenderness",
    "low platelets",
    "elevated LFTs",
    "gestational hypertension",
    "BP 168/112",
    "severe range BPs",
]


@pytest.mark.parametrize("text", SEVERE_FEATURES)
def test_severe_features_are_red_flags_postpartum_only(text: str) -> None:
    finding = condition(concept(text=text), at(10))
    assert scenario(*_lp_headache(), POSTPARTUM, finding) is RED_FLAGS
    assert scenario(*_lp_headache(), finding) is not RED_FLAGS


def test_the_issue_cases() -> None:
    """The postpartum records of the issue: vision changes, severe pressure with scotomata, blurry vision
    and RUQ pain in a Condition 76 h after a labour epidural."""
    order = service_request(
        "sr-1", CT_HEAD, concept(text="Postpartum headache, BP 182/118 with visual scotomata")
    )
    assert scenario(LABOUR_EPIDURAL, order=order) is RED_FLAGS
    order = service_request(
        "sr-1", CT_HEAD, concept(text="post LP headache with new vision changes")
    )
    assert scenario(*_lp_headache(), order=order) is RED_FLAGS
    epidural_76h = procedure(concept(CPT, "01967", "Labor epidural"), at(76))
    blurry = condition(concept(text="Blurry vision and RUQ pain, 3 days postpartum"), at(10))
    evaluation = decide(epidural_76h, headache(), blurry, order=service_request("sr-1", CT_HEAD))
    assert evaluation.decisions[0].scenario is RED_FLAGS
    cards = evaluation.response.to_json_dict()["cards"]
    assert "delete" not in action_types(*cards)


def test_the_card_names_possible_pre_eclampsia_and_its_work_up() -> None:
    evaluation = decide(*_lp_headache(), POSTPARTUM, SEVERE)
    [card] = [
        c for c in evaluation.response.to_json_dict()["cards"] if c["indicator"] == "critical"
    ]
    assert "pre-eclampsia" in card["summary"].lower()
    assert "magnesium" in card["detail"] and "blood pressure 165/112 mmhg" in card["detail"].lower()


def test_with_the_mri_drafted_the_card_still_names_the_work_up() -> None:
    order = service_request("sr-1", MRI_BRAIN_WWO, concept(text="postpartum headache"))
    evaluation = evaluate_now(hook_request([order], [*_lp_headache(), SEVERE], hook="order-select"))
    [card] = evaluation.response.to_json_dict()["cards"]
    assert card["indicator"] == "critical" and "pre-eclampsia" in card["summary"].lower()


def test_fever_postpartum_is_a_red_flag_without_the_pre_eclampsia_card() -> None:
    fever = condition(concept(text="fever 38.6"), at(3))
    evaluation = decide(*_lp_headache(), POSTPARTUM, fever)
    assert evaluation.decisions[0].variant is None


def test_knowledge_reads_pregnancy_in_words(knowledge: Knowledge) -> None:
    obstetric = knowledge.finding_groups["obstetric_context"]
    pregnant, delivered = (
        knowledge.finding_groups["pregnant"],
        knowledge.finding_groups["delivered"],
    )
    for text, group in (
        ("34+2/40", pregnant),
        ("G1P0 at 38 weeks", pregnant),
        ("s/p NSVD", delivered),
        ("intrapartum", delivered),
        ("IUP", pregnant),
        ("G2P1", obstetric),
    ):
        assert match({"text": text}, knowledge.findings) & group, text
    for text in ("drug delivery pump", "not pregnant", "denies pregnancy"):
        assert not match({"text": text}, knowledge.findings) & obstetric, text


def codes_created(evaluation: Any) -> set[str]:
    return created_codes(*evaluation.response.to_json_dict()["cards"])


PREGNANT = condition(concept(ICD10CM, "Z3A.32", "32 weeks gestation"), at(400))
FEVER = condition(concept(text="fever 38.5"), at(2))


def test_in_pregnancy_the_mri_head_suggested_is_without_contrast() -> None:
    evaluation = decide(*_lp_headache(), PREGNANT, FEVER)
    assert "70551" in codes_created(evaluation) and "70553" not in codes_created(evaluation)
    [card] = evaluation.response.to_json_dict()["cards"]
    assert "In pregnancy no gadolinium" in card["detail"]


def test_after_delivery_gadolinium_is_suggested_as_usual() -> None:
    evaluation = decide(*_lp_headache(), POSTPARTUM, FEVER)
    assert "70553" in codes_created(evaluation)


def test_pregnant_and_delivered_since_is_postpartum() -> None:
    delivered = procedure(concept(CPT, "59514"), at(100))
    evaluation = decide(*_lp_headache(), PREGNANT, delivered, FEVER)
    assert "70553" in codes_created(evaluation)


def test_in_pregnancy_no_myelography_is_suggested() -> None:
    lp_100h = procedure(concept(CPT, "62270", "Lumbar puncture"), at(100))
    pdph = condition(concept(ICD10CM, "G97.1"), at(80))
    order = service_request("sr-1", MRI_BRAIN_WWO)
    evaluation = decide(lp_100h, pdph, PREGNANT, order=order)
    [card] = evaluation.response.to_json_dict()["cards"]
    assert card["source"]["topic"]["code"] == "pdph-persistent"
    assert "suggestions" not in card and "In pregnancy no gadolinium" in card["detail"]


@pytest.mark.parametrize(
    ("effective", "counts"),
    [
        ("date-only today", True),
        ("no offset, 2 h ago", True),
        ("garbage", False),
        ("the last day of year 9999", False),
        ("date-only 5 days ago", False),
    ],
)
def test_a_pressure_is_dated_as_written(effective: str, counts: bool) -> None:
    """Observations are screened by their raw time before validation: only those plainly older than
    the window are skipped; a date of today, or a time without offset, still counts."""
    from tests.conftest import NOW

    panel = pressure_panel(185, 100)
    panel["effectiveDateTime"] = {
        "date-only today": NOW.date().isoformat(),
        "no offset, 2 h ago": at(2).split("+")[0],
        "garbage": "not a date",
        "the last day of year 9999": "9999-12-31",
        "date-only 5 days ago": at(120)[:10],
    }[effective]
    expected = RED_FLAGS if counts else ACUTE
    assert scenario(*_lp_headache(), panel) is expected
