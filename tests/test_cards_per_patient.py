"""Cards about the patient and cards about one order (SPEC §4): a thunderclap, red-flag or
altered-mental-status card appears once per response, naming every draft order it concerns; a cancel or
replace names its one order; no two cards of a response share summary and detail. The
altered-mental-status card is always shown, and adds a CT head only when no head imaging is drafted."""

from __future__ import annotations

from typing import Any

from tests.support.builders import (
    CPT,
    MRI_BRAIN_WWO,
    at,
    concept,
    condition,
    created_codes,
    evaluate_now,
    headache,
    hook_request,
    lumbar_puncture,
    service_request,
    suggested_actions,
)

CT_HEAD = service_request("sr-ct", concept(CPT, "70450", "CT head without contrast"))
MRI_BRAIN = service_request("sr-mri", MRI_BRAIN_WWO)
MRI_LUMBAR = service_request(
    "sr-lumbar", concept(CPT, "72158", "MRI lumbar spine without and with contrast")
)
CONFUSED = condition(concept(text="confused and drowsy"), at(3))
FEVER = condition(concept(text="fever 38.7"), at(3))


def cards(
    *orders: dict[str, Any], record: list[dict[str, Any]], **config: Any
) -> list[dict[str, Any]]:
    request = hook_request(list(orders), [lumbar_puncture(30), headache(), *record])
    result: list[dict[str, Any]] = evaluate_now(request, **config).response.to_json_dict()["cards"]
    return result


def test_a_thunderclap_basket_of_two_orders_gets_one_card_naming_both() -> None:
    thunderclap = condition(concept(text="worst headache of her life"), at(2))
    [card] = cards(MRI_BRAIN, MRI_LUMBAR, record=[thunderclap])
    assert card["source"]["topic"]["code"] == "thunderclap"
    assert "MRI brain without and with contrast and MRI lumbar spine" in card["detail"]
    assert card["extension"]["pdph-imaging.draft-orders"] == [
        "ServiceRequest/sr-mri",
        "ServiceRequest/sr-lumbar",
    ]
    assert "70450" in created_codes(card)


def test_red_flags_on_two_orders_one_card() -> None:
    [card] = cards(CT_HEAD, MRI_LUMBAR, record=[FEVER])
    assert card["indicator"] == "critical"
    assert "CT head without contrast and MRI lumbar spine" in card["summary"] + card["detail"]


def test_cancels_stay_one_per_order() -> None:
    both = cards(CT_HEAD, MRI_LUMBAR, record=[])
    deleted = [a["resourceId"] for a in suggested_actions(*both) if a["type"] == "delete"]
    assert deleted == ["ServiceRequest/sr-ct", "ServiceRequest/sr-lumbar"]
    assert len({(c["summary"], c["detail"]) for c in both}) == len(both) == 2


def test_altered_mental_status_is_always_shown_even_with_the_appropriate_mri() -> None:
    mri_spine = service_request(
        "sr-spine", concept(CPT, "72156", "MRI cervical spine without and with contrast")
    )
    [card] = cards(mri_spine, record=[CONFUSED])
    assert (
        card["source"]["topic"]["code"] == "altered-mental-status"
        and card["indicator"] == "critical"
    )
    assert card["extension"]["pdph-imaging.rating"] == "usually-appropriate"


def test_altered_mental_status_adds_a_ct_head_only_without_head_imaging() -> None:
    [card] = cards(MRI_LUMBAR, record=[CONFUSED])
    assert "70450" in created_codes(card)
    [create] = [a for s in card["suggestions"] for a in s["actions"]]
    assert create["resource"]["priority"] in {"urgent", "stat"}
    [card] = cards(MRI_BRAIN, record=[CONFUSED])
    assert "suggestions" not in card and card["indicator"] == "critical"


def test_the_red_flags_summary_names_the_flags() -> None:
    [card] = cards(CT_HEAD, record=[FEVER])
    assert card["summary"].startswith("Fever after dural puncture: image now")
    neck = condition(concept(text="neck stiffness"), at(3))
    [card] = cards(CT_HEAD, record=[FEVER, neck])
    assert card["summary"].startswith("Fever and nuchal rigidity after dural puncture")
    many = [
        FEVER,
        neck,
        condition(concept(text="blurred vision"), at(3)),
        condition(concept(text="signs of systemic infection"), at(3)),
    ]
    long_name = service_request(
        "sr-ct",
        concept(text="CT head without contrast, emergency department protocol, trauma bay 3"),
    )
    [card] = cards(long_name, record=many)
    assert len(card["summary"]) <= 139 and card["summary"].startswith("Fever")
    assert "image now" in card["summary"]


def test_suggestion_labels_spell_out_what_the_summary_spells_out() -> None:
    lp_100h = lumbar_puncture(100)
    request = hook_request(
        [MRI_BRAIN], [lp_100h, condition(concept(text="orthostatic headache"), at(80))]
    )
    [card] = evaluate_now(request).response.to_json_dict()["cards"]
    [suggestion] = card["suggestions"]
    assert "digital subtraction myelography" in card["summary"].lower()
    assert "digital subtraction myelography" in suggestion["label"].lower()
