"""SPEC §2 as now written, table by table: the DSM replace needs evidence specific to a leak; a
post-blood-patch headache is a new or different one (a persisting orthostatic headache is a failed
patch); headache evidence counts from the puncture on; a time known only to the day is placed by the
interval it can lie in."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cds_service.knowledge import Scenario
from tests.conftest import NOW
from tests.support.builders import (
    CPT,
    ICD10CM,
    MRI_BRAIN_WWO,
    SNOMED,
    action_types,
    at,
    blood_patch,
    concept,
    condition,
    ct_report,
    evaluate_now,
    headache,
    hook_request,
    lumbar_puncture,
    pdph,
    procedure,
    service_request,
)

MRI = service_request("sr-1", MRI_BRAIN_WWO)


def outcome(resources: list[dict[str, Any]], order: dict[str, Any] = MRI) -> tuple[Any, Any]:
    evaluation = evaluate_now(hook_request([order], resources, hook="order-select"))
    decision = evaluation.decisions[0] if evaluation.decisions else None
    cards = evaluation.response.to_json_dict()["cards"]
    return decision, cards


ORTHOSTATIC = condition(concept(text="orthostatic headache"), at(80))
CSF_LEAK = condition(concept(ICD10CM, "G96.00"), at(80))
GENERIC = condition(concept(SNOMED, "25064002", "Headache"), at(80))

LEAK_EVIDENCE = [
    ("orthostatic headache in words", ORTHOSTATIC, True),
    ("post-dural-puncture headache G97.1", pdph(80), True),
    ("CSF leak G96.00", CSF_LEAK, True),
    ("a generic headache only", GENERIC, False),
]


@pytest.mark.parametrize(
    ("finding", "replace"), [c[1:] for c in LEAK_EVIDENCE], ids=[c[0] for c in LEAK_EVIDENCE]
)
def test_the_dsm_replace_needs_leak_specific_evidence(
    finding: dict[str, Any], replace: bool
) -> None:
    decision, cards = outcome([lumbar_puncture(100), finding])
    assert decision.scenario is Scenario.PDPH_PERSISTENT
    [card] = cards
    if replace:
        assert card["indicator"] == "warning" and action_types(*cards) == {"delete", "create"}
    else:
        assert card["indicator"] == "info" and "suggestions" not in card
        assert "orthostatic" in card["summary"]


def test_the_order_reason_can_be_the_leak_evidence() -> None:
    order = service_request("sr-1", MRI_BRAIN_WWO, concept(text="headache worse when upright"))
    decision, cards = outcome([lumbar_puncture(100)], order)
    assert decision.scenario is Scenario.PDPH_PERSISTENT and action_types(*cards) == {
        "delete",
        "create",
    }


DSM = service_request(
    "sr-1", concept(text="Myelography, digital subtraction (DSM), complete spine")
)
BLOOD_PATCH = [
    (
        "a new headache after the patch",
        [
            lumbar_puncture(150),
            ORTHOSTATIC,
            blood_patch(72),
            condition(concept(text="new headache, worse lying down"), at(20)),
        ],
        Scenario.POST_BLOOD_PATCH,
    ),
    (
        "the orthostatic headache persists after the patch: a failed patch",
        [
            lumbar_puncture(150),
            blood_patch(72),
            condition(concept(text="orthostatic headache persists"), at(20)),
        ],
        Scenario.PDPH_PERSISTENT,
    ),
    (
        "PDPH recorded again after the patch: a failed patch",
        [lumbar_puncture(150), blood_patch(72), pdph(20)],
        Scenario.PDPH_PERSISTENT,
    ),
]


@pytest.mark.parametrize(
    ("resources", "expected"), [c[1:] for c in BLOOD_PATCH], ids=[c[0] for c in BLOOD_PATCH]
)
def test_post_blood_patch_is_a_new_or_different_headache(
    resources: list[dict[str, Any]], expected: Scenario
) -> None:
    decision, _ = outcome(resources, DSM)
    assert decision.scenario is expected


HEADACHE_TIMING = [
    (
        "a headache recorded after the puncture",
        [lumbar_puncture(30), headache(20)],
        Scenario.PDPH_ACUTE,
    ),
    (
        "a headache that led to the puncture (recorded before it)",
        [lumbar_puncture(30), headache(40)],
        None,
    ),
    (
        "a PDPH diagnosis counts whatever its date",
        [lumbar_puncture(30), pdph(40)],
        Scenario.PDPH_ACUTE,
    ),
    (
        "a thunderclap before the puncture still counts",
        [lumbar_puncture(30), condition(concept(text="thunderclap headache"), at(40))],
        Scenario.THUNDERCLAP,
    ),
]


@pytest.mark.parametrize(
    ("resources", "expected"), [c[1:] for c in HEADACHE_TIMING], ids=[c[0] for c in HEADACHE_TIMING]
)
def test_headache_evidence_from_the_puncture_on(
    resources: list[dict[str, Any]], expected: Scenario | None
) -> None:
    decision, _ = outcome(resources)
    assert (decision.scenario if decision else None) is expected


def dated(days_ago: int) -> dict[str, Any]:
    return procedure(concept(CPT, "62270"), (NOW - timedelta(days=days_ago)).date().isoformat())


def undated_offset(hours_ago: float) -> dict[str, Any]:
    """A dateTime without an offset: known to ±14 h."""
    return procedure(
        concept(CPT, "62270"), (NOW - timedelta(hours=hours_ago)).replace(tzinfo=None).isoformat()
    )


TIMES = [
    ("a date yesterday: within 72 h however read", dated(1), Scenario.PDPH_ACUTE),
    ("a date 3 days ago straddles 72 h: silent", dated(3), None),
    ("a date 5 days ago: beyond 72 h however read", dated(5), Scenario.PDPH_PERSISTENT),
    ("no offset, 40 h ago (26-54 h): acute", undated_offset(40), Scenario.PDPH_ACUTE),
    ("no offset, 70 h ago (56-84 h): silent", undated_offset(70), None),
    ("no offset, 100 h ago (86-114 h): persistent", undated_offset(100), Scenario.PDPH_PERSISTENT),
]


@pytest.mark.parametrize(
    ("puncture", "expected"), [c[1:] for c in TIMES], ids=[c[0] for c in TIMES]
)
def test_a_time_known_to_the_day_is_an_interval(
    puncture: dict[str, Any], expected: Scenario | None
) -> None:
    decision, _ = outcome([puncture, pdph(2)])
    assert (decision.scenario if decision else None) is expected


def test_a_red_flag_is_never_silenced_by_a_straddling_date() -> None:
    decision, _ = outcome([dated(3), pdph(2), condition(concept(text="fever"), at(2))])
    assert decision.scenario is Scenario.PDPH_ACUTE_RED_FLAGS


THUNDERCLAP = service_request("sr-1", MRI_BRAIN_WWO, concept(text="worst headache of her life"))
CT_DONE = [
    ("a CT head 3 h ago counts as done: no card", 3, False),
    ("exactly 6 h ago still counts", 6, False),
    ("a CT head 10 days ago no longer excludes a bleed: add one", 240, True),
]


@pytest.mark.parametrize(
    ("hours_ago", "adds_ct"), [c[1:] for c in CT_DONE], ids=[c[0] for c in CT_DONE]
)
def test_thunderclap_counts_a_ct_head_of_the_last_6_hours(hours_ago: float, adds_ct: bool) -> None:
    decision, cards = outcome(
        [lumbar_puncture(100), ct_report("No acute abnormality", hours_ago)], THUNDERCLAP
    )
    assert decision.scenario is Scenario.THUNDERCLAP
    assert bool(cards) is adds_ct and (action_types(*cards) == {"create"}) is adds_ct


@pytest.mark.parametrize("hour", [0, 11, 23])
def test_a_date_only_record_of_today_is_never_in_the_future(hour: int) -> None:
    """A Condition or a puncture dated today (date only) counts at any time of day: it is in the
    future only when even its earliest instant is."""
    now = NOW.replace(hour=hour, minute=5)
    today = now.date().isoformat()
    meningitis = condition(concept(text="meningitis"), today)
    lp_today = procedure(concept(CPT, "62270"), today)
    lp = procedure(concept(CPT, "62270"), at(30, now))
    headache_since = condition(concept(ICD10CM, "G97.1"), at(1, now))
    for resources, expected in (
        ([lp, headache_since, meningitis], Scenario.PDPH_ACUTE_RED_FLAGS),
        ([lp_today, condition(concept(ICD10CM, "G97.1"), today)], Scenario.PDPH_ACUTE),
    ):
        evaluation = evaluate_now(hook_request([MRI], resources, hook="order-select"), now=now)
        assert evaluation.decisions[0].scenario is expected, (hour, expected)


def test_a_red_flag_dated_without_an_offset_still_counts() -> None:
    """A Condition whose onset is written without an offset (invalid FHIR, some EHRs) is read as the
    interval it can lie in, never dropped for its date's form."""
    naive = (NOW - timedelta(hours=3)).replace(tzinfo=None).isoformat(timespec="seconds")
    meningitis = condition(concept(text="meningitis"), naive)
    decision, _ = outcome([lumbar_puncture(30), pdph(2), meningitis])
    assert decision.scenario is Scenario.PDPH_ACUTE_RED_FLAGS
