"""The fail-safe rule over every recent text (SPEC §2): a card that discourages imaging (a usually not
appropriate rating, a cancel, a replace) is issued only when the service understood every recent text
its decision reads: the order's reason and note, Conditions without a standard code recorded within
the observation window, and exam or vital-sign Observations written in words whose observed item the
knowledge reads. Otherwise the card is information: it names the words, offers no suggestion, keeps the
matrix rating with `pdph-imaging.understood: false`, and the order is not rated (PAMA
`no-criteria-apply`)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.builders import (
    CPT,
    ICD10CM,
    PID,
    SNOMED,
    action_types,
    at,
    concept,
    condition,
    evaluate_now,
    headache,
    hook_request,
    lumbar_puncture,
    procedure,
    service_request,
)

CT_HEAD = concept(CPT, "70450", "CT head without contrast")
HEADACHE_CT = service_request("sr-1", CT_HEAD, concept(text="headache after LP"))
POSTPARTUM = condition(concept(ICD10CM, "Z39.2"), at(40))


def exam(name: str, value: Any, hours_ago: float = 3) -> dict[str, Any]:
    o: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": name},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": at(hours_ago),
    }
    o["valueString" if isinstance(value, str) else "valueCodeableConcept"] = value
    return o


def outcome(*record: dict[str, Any], order: dict[str, Any] = HEADACHE_CT, hours: float = 30) -> Any:
    """The card and PAMA rating for `order`, a headache `hours` after an LP and `record`."""
    request = hook_request(
        [order], [lumbar_puncture(hours), headache(), *record], hook="order-select"
    )
    body = evaluate_now(request).response.to_json_dict()
    [card] = body["cards"] or [None]
    [action] = body["systemActions"]
    rating = action["resource"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
    return card, rating


def understood(card: dict[str, Any]) -> bool:
    return card.get("extension", {}).get("pdph-imaging.understood", True)


# (what, record beside the headache 30 h after an LP, words the card must name, or None: understood)
RECORDS = [
    ("nothing else", [], None),
    (
        "a recent text-only Condition with a word no rule reads",
        [condition(concept(text="Syncope episode at home"), at(10))],
        "syncope",
    ),
    (
        "the same Condition coded in SNOMED CT: understood by its code",
        [condition(concept(SNOMED, "271594007", "Syncope episode at home"), at(10))],
        None,
    ),
    (
        "the same Condition coded under the ICD-10-CM OID",
        [
            condition(
                concept("urn:oid:2.16.840.1.113883.6.90", "R55", "Syncope episode at home"), at(10)
            )
        ],
        None,
    ),
    (
        "the same Condition with a local code only and words",
        [
            condition(
                {
                    "coding": [
                        {"system": "urn:local", "code": "X1", "display": "Syncope episode at home"}
                    ]
                },
                at(10),
            )
        ],
        "syncope",
    ),
    (
        "the same Condition 100 h old: outside the observation window",
        [condition(concept(text="Syncope episode at home"), at(100))],
        None,
    ),
    (
        "the same Condition entered in error",
        [
            condition(
                concept(text="Syncope episode at home"), at(10), verification="entered-in-error"
            )
        ],
        None,
    ),
    (
        "the same Condition resolved",
        [condition(concept(text="Syncope episode at home"), at(10), clinical="resolved")],
        None,
    ),
    (
        "a neuro exam in words no rule reads",
        [exam("Neuro exam", "subtle asymmetry of the smile")],
        "asymmetry",
    ),
    (
        "a normal neuro exam",
        [
            exam(
                "Neuro exam",
                "Alert and oriented x3, PERRL, CN II-XII intact, strength 5/5 throughout",
            )
        ],
        None,
    ),
    ("a normal neck exam", [exam("Neck", "Supple")], None),
    (
        "an eye exam valued by a CodeableConcept's words",
        [exam("Eyes", {"text": "nystagmus on lateral gaze"})],
        "nystagmus",
    ),
    ("a skin row is not read", [exam("Skin", "rash on forearm")], None),
    ("an abdominal exam outside pregnancy is not read", [exam("Abdomen", "guarding")], None),
    ("an abdominal exam postpartum is read", [POSTPARTUM, exam("Abdomen", "guarding")], "guarding"),
    (
        "an exam 100 h old",
        [exam("Neuro exam", "subtle asymmetry of the smile", hours_ago=100)],
        None,
    ),
]


@pytest.mark.parametrize(("record", "words"), [r[1:] for r in RECORDS], ids=[r[0] for r in RECORDS])
def test_acute_card_with_the_recent_record(record: list[dict[str, Any]], words: str | None) -> None:
    card, rating = outcome(*record)
    assert card["source"]["topic"]["code"] == "pdph-acute"
    assert card["extension"]["pdph-imaging.rating"] == "usually-not-appropriate"
    if words is None:
        assert (
            understood(card) and card["indicator"] == "warning" and "delete" in action_types(card)
        )
        assert rating == "not-appropriate"
    else:
        assert not understood(card)
        assert card["indicator"] == "info" and "suggestions" not in card
        assert words in card["detail"] and "red flag" in card["summary"]
        assert rating == "no-criteria-apply"


def test_the_persistent_replace_becomes_information() -> None:
    card, rating = outcome(condition(concept(text="Syncope episode at home"), at(10)), hours=100)
    assert card["source"]["topic"]["code"] == "pdph-persistent"
    assert card["indicator"] == "info" and "suggestions" not in card and not understood(card)
    assert rating == "no-criteria-apply"


def test_the_sih_replace_becomes_information() -> None:
    order = service_request(
        "sr-1", concept(CPT, "72270", "CT myelogram"), concept(text="orthostatic headache")
    )
    request = hook_request(
        [order],
        [condition(concept(text="Orthostatic headache; tinnitus"), at(10))],
        hook="order-select",
    )
    [card] = evaluate_now(request).response.to_json_dict()["cards"]
    assert card["source"]["topic"]["code"] == "sih"
    assert "suggestions" not in card and not understood(card) and "tinnitus" in card["detail"]


def test_a_red_flag_card_is_never_turned_into_information() -> None:
    fever = condition(concept(text="fever and odd feeling"), at(3))
    card, rating = outcome(fever)
    assert rating == "appropriate"
    assert card["indicator"] == "critical" and understood(card) and action_types(card) == {"create"}


def test_the_sandbox_snomed_fully_specified_name_is_a_standard_display() -> None:
    reason = {
        "coding": [{"system": SNOMED, "code": "25064002", "display": "Headache (finding)"}],
        "text": "Headache (finding)",
    }
    order = service_request("sr-1", CT_HEAD, reason)
    card, rating = outcome(order=order)
    assert understood(card) and "delete" in action_types(card) and rating == "not-appropriate"


REASONS = [
    ("a coded other indication", concept(ICD10CM, "G35", "Multiple sclerosis"), "silent"),
    ("trauma in words", concept(text="Trauma: fall from ladder"), "silent"),
    ("MS work-up in words", concept(text="MS workup, new lesions?"), "silent"),
    ("tumour follow-up", concept(text="follow-up of pituitary adenoma"), "silent"),
    ("a reason the service cannot read at all is doubt", concept(text="xyzzy plugh"), "doubt"),
    (
        "a red flag without a headache word is no other reason",
        concept(text="blurred vision"),
        "pdph-acute-red-flags",
    ),
]


@pytest.mark.parametrize(
    ("reason", "expected"), [r[1:] for r in REASONS], ids=[r[0] for r in REASONS]
)
def test_the_order_reason(reason: dict[str, Any], expected: str) -> None:
    card, rating = outcome(order=service_request("sr-1", CT_HEAD, reason))
    if expected == "silent":
        assert card is None and rating == "no-criteria-apply"
    elif expected == "doubt":
        assert card["source"]["topic"]["code"] == "pdph-acute" and not understood(card)
        assert "xyzzy" in card["detail"] and "suggestions" not in card
    else:
        assert card["source"]["topic"]["code"] == expected


def test_a_labour_epidural_record_word_is_read_like_the_rest() -> None:
    """The issue's record: 'Blurry vision and RUQ pain, 3 days postpartum' 76 h after a labour
    epidural is a red flag, never the persistent replace."""
    epidural = procedure(concept(CPT, "01967"), at(76))
    blurry = condition(concept(text="Blurry vision and RUQ pain, 3 days postpartum"), at(10))
    request = hook_request([HEADACHE_CT], [epidural, headache(), blurry], hook="order-select")
    cards = evaluate_now(request).response.to_json_dict()["cards"]
    assert cards and all(
        c["indicator"] == "critical" and "delete" not in action_types(c) for c in cards
    )


@pytest.mark.parametrize(
    ("value", "red_flag"), [("Power 4/5 left arm", True), ("Strength 5/5 throughout", False)]
)
def test_a_muscle_power_grade_is_read(value: str, red_flag: bool) -> None:
    """A grade is a number, which the fail-safe's word reading never sees: a power below 5/5 must
    be recognised as weakness, or the acute card would offer its cancel."""
    card, _ = outcome(exam("Neuro exam", value))
    assert (card["source"]["topic"]["code"] == "pdph-acute-red-flags") is red_flag
    assert ("delete" in action_types(card)) is not red_flag
