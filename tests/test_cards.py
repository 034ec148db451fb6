"""Card rendering against the CDS Hooks 2.0 rules and SPEC §4, over every fixture."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from cds_tools.fixtures import fixture_paths, load_fixture
from tests.conftest import NOW
from tests.support.builders import (
    CPT,
    MRI_BRAIN_WWO,
    concept,
    empty_values,
    evaluate_now,
    hook_request,
    lumbar_puncture,
    pdph,
    service_request,
)

RATINGS = {"usually-appropriate", "may-be-appropriate", "usually-not-appropriate", "not-rated"}
NEVER_DISCOURAGE = {"pdph-acute-red-flags", "altered-mental-status"}


@cache
def response_to(path: Path, confirm: bool, mirror: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fixture's request and the service's answer, evaluated when a test first needs it (not at
    collection, which every pytest-xdist worker repeats) and then shared by the tests below."""
    fx = load_fixture(path, NOW)
    evaluation = evaluate_now(
        fx["request"],
        confirm_appropriate_orders=confirm,
        system_actions_in_extension=mirror,
    )
    return fx["request"], evaluation.response.to_json_dict()


# Every fixture as shipped, then with confirmations and system actions mirrored in an extension.
ALL = [(path, False, False) for path in fixture_paths()]
ALL += [(path, True, True) for path in fixture_paths()]


@pytest.mark.parametrize(("path", "confirm", "mirror"), ALL, ids=[a[0].stem for a in ALL])
def test_card_contract(path: Path, confirm: bool, mirror: bool) -> None:
    request_, response = response_to(path, confirm, mirror)
    assert empty_values({k: v for k, v in response.items() if k != "cards"} | {"x": 1}) == []
    for card in response["cards"]:
        assert empty_values(card) == []
        assert len(card["summary"]) < 140
        assert card["indicator"] in {"info", "warning", "critical"}
        assert card["source"]["label"].startswith("ACR Appropriateness Criteria")
        assert card["source"]["topic"]["system"] == "urn:pdph-imaging:scenario"
        assert card["extension"]["pdph-imaging.rating"] in RATINGS
        hours = card["extension"].get("pdph-imaging.hours-since-puncture")
        assert hours is None or isinstance(hours, float)
        suggestions = card.get("suggestions", [])
        assert ("selectionBehavior" in card) == bool(suggestions)
        assert all(r["display"] for r in card.get("overrideReasons", []))
        for suggestion in suggestions:
            assert suggestion["uuid"] and suggestion["actions"]
            types = [a["type"] for a in suggestion["actions"]]
            if card["source"]["topic"]["code"] in NEVER_DISCOURAGE:
                assert types != ["delete"], "never offer a bare cancellation here"
            for action in suggestion["actions"]:
                if action["type"] == "delete":
                    # CDS Hooks 2.0 Action.resourceId: a string, a relative reference (not a list).
                    assert isinstance(action["resourceId"], str)
                    assert re.fullmatch(
                        r"ServiceRequest/[A-Za-z0-9\-.]{1,64}", action["resourceId"]
                    )
                    assert action["resourceId"] == card["extension"]["pdph-imaging.draft-order"]
                if action["type"] == "create":
                    created = action["resource"]
                    assert created["resourceType"] == "ServiceRequest"
                    assert (created["status"], created["intent"]) == ("draft", "order")
                    assert created["subject"] == {
                        "reference": f"Patient/{request_['context']['patientId']}"
                    }
                    assert created["code"]["text"]
    uuids = [c["uuid"] for c in response["cards"]] + [
        s["uuid"] for c in response["cards"] for s in c.get("suggestions", [])
    ]
    assert len(uuids) == len(set(uuids))


def test_dsm_suggestion_names_the_study_in_words() -> None:
    evaluation = evaluate_now(
        hook_request([service_request("sr-1", MRI_BRAIN_WWO)], [lumbar_puncture(100), pdph()])
    )
    card = evaluation.response.to_json_dict()["cards"][0]
    create = card["suggestions"][0]["actions"][1]
    assert (
        create["resource"]["code"]["text"]
        == "Radiographic myelography, digital subtraction, complete spine"
    )
    # Radiation levels moved to the explanation page the card links to (tests/test_api.py).
    assert "100 h ago" in card["detail"]


def test_confirmation_card_is_configurable() -> None:
    dsm = service_request("sr-dsm", concept(CPT, "72270", "Digital subtraction myelography"))
    request = hook_request([dsm], [lumbar_puncture(100), pdph()])
    assert evaluate_now(request).response.cards == []
    confirmed = evaluate_now(request, confirm_appropriate_orders=True).response.cards
    assert [c.indicator for c in confirmed] == ["info"]
    assert confirmed[0].extension is not None
    assert confirmed[0].extension["pdph-imaging.rating"] == "usually-appropriate"


def test_system_actions_switch_and_sandbox_mirror() -> None:
    request = hook_request([service_request("sr-1", MRI_BRAIN_WWO)], [lumbar_puncture(30), pdph()])
    assert evaluate_now(request, system_actions=False).response.systemActions is None
    mirrored = evaluate_now(request, system_actions_in_extension=True).response.to_json_dict()
    assert mirrored["extension"]["systemActions"] == mirrored["systemActions"]
    update = mirrored["systemActions"][0]
    assert update["type"] == "update"
    assert update["resource"]["code"] == MRI_BRAIN_WWO  # the order itself is unchanged
    assert request["context"]["draftOrders"]["entry"][0]["resource"].get("extension") is None


def test_summary_fits_with_the_longest_study_name() -> None:
    order = service_request("sr-1", concept(CPT, "72270", "Lumbar myelogram"))
    evaluation = evaluate_now(hook_request([order], [lumbar_puncture(100), pdph()]))
    assert all(len(c.summary) < 140 for c in evaluation.response.cards)


# --- Short cards (SPEC §4): summary in the order's words, <= 90 words, full rationale one click away --

RAW_CODE = re.compile(r"\b\d{5,}\b|\((sct|cpt|icd-10-cm|loinc)\)|urn:oid", re.I)


@pytest.mark.parametrize(("path", "confirm", "mirror"), ALL, ids=[a[0].stem for a in ALL])
def test_cards_are_short_and_plain(path: Path, confirm: bool, mirror: bool) -> None:
    _, response = response_to(path, confirm, mirror)
    for card in response["cards"]:
        assert len(card["detail"].split()) <= 90, card["detail"]
        assert card["detail"].startswith("**Why:**")
        assert "**What to do:**" in card["detail"]
        for text in [
            card["summary"],
            card["detail"],
            *(s["label"] for s in card.get("suggestions", [])),
        ]:
            assert not RAW_CODE.search(text), text
        [link] = card["links"]
        assert link["type"] == "absolute"
        assert link["url"].endswith(f"/explain/{card['source']['topic']['code']}")
        assert link["url"].startswith("http")
        urgent = card["source"]["topic"]["code"] in NEVER_DISCOURAGE | {"thunderclap"}
        if urgent and card["indicator"] != "info":
            assert card["indicator"] == "critical"


def test_summary_and_labels_use_the_order_s_own_words() -> None:
    order = service_request("sr-1", concept(CPT, "70553", "MRI brain w/wo contrast"))
    body = evaluate_now(hook_request([order], [lumbar_puncture(100), pdph()])).response
    [card] = body.to_json_dict()["cards"]
    assert card["summary"].startswith("MRI brain w/wo contrast:")
    [suggestion] = card["suggestions"]
    assert (
        suggestion["label"]
        == "Replace MRI brain w/wo contrast with digital subtraction myelography (DSM) of the complete spine"
    )
    assert "digital subtraction myelography (DSM)" in card["detail"]


def test_a_long_order_name_is_quoted_in_labels_up_to_60_characters() -> None:
    words = "MRI brain without and with contrast, per neuroradiology protocol for CSF leak"
    order = service_request("sr-1", concept(CPT, "70553", words))
    body = evaluate_now(hook_request([order], [lumbar_puncture(100), pdph()])).response
    [card] = body.to_json_dict()["cards"]
    [suggestion] = card["suggestions"]
    quoted = words[:59].rstrip() + "…"
    assert (
        suggestion["label"]
        == f"Replace {quoted} with digital subtraction myelography (DSM) of the complete spine"
    )
    assert len(quoted) == 60


def test_a_second_card_never_claims_what_only_another_proposes() -> None:
    lumbar = service_request("sr-2", concept(CPT, "72148", "MRI lumbar spine"))
    request = hook_request(
        [service_request("sr-1", MRI_BRAIN_WWO), lumbar], [lumbar_puncture(100), pdph()]
    )
    cards = evaluate_now(request).response.to_json_dict()["cards"]
    labels = [s["label"] for c in cards for s in c["suggestions"]]
    assert labels == [
        "Replace MRI brain without and with contrast with digital subtraction myelography (DSM) of the complete spine",
        "Cancel MRI lumbar spine (digital subtraction myelography (DSM) of the complete spine is proposed on another card)",
    ]


def test_created_orders_are_orderable() -> None:
    reason = concept(text="post-LP headache")
    order = service_request("sr-1", MRI_BRAIN_WWO, reason, encounter={"reference": "Encounter/e1"})
    body = evaluate_now(
        hook_request([order], [lumbar_puncture(100)]),
        site_orderables={"dsm-complete-spine": [{"system": "urn:oid:1.2.3.4", "code": "IMG9"}]},
    ).response.to_json_dict()
    [create] = [a for a in body["cards"][0]["suggestions"][0]["actions"] if a["type"] == "create"]
    created = create["resource"]
    assert [c["code"] for c in created["code"]["coding"]] == ["62305", "IMG9"]
    assert (
        created["code"]["text"] == "Radiographic myelography, digital subtraction, complete spine"
    )
    assert created["category"][0]["coding"][0]["code"] == "363679005"
    assert created["reasonCode"] == [reason]
    assert created["encounter"] == {"reference": "Encounter/e1"}
    assert "priority" not in created  # routine


def test_red_flag_orders_are_urgent() -> None:
    from tests.support.builders import temperature

    order = service_request("sr-1", concept(CPT, "70450", "CT head without contrast"))
    body = evaluate_now(hook_request([order], [lumbar_puncture(30), pdph(), temperature(39)]))
    [card] = body.response.to_json_dict()["cards"]
    assert card["indicator"] == "critical"
    creates = [a["resource"] for s in card["suggestions"] for a in s["actions"]]
    assert {c["priority"] for c in creates} == {"urgent"}
    assert all(a["type"] == "create" for s in card["suggestions"] for a in s["actions"])
