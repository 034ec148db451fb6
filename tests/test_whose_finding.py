"""Whose finding, and when (SPEC §2): a family member's (phrases, ICD-10-CM Z80-Z84,
FamilyMemberHistory), a hypothetical or an instruction ("return if fever", "PRN for fever"), a past or
resolved one is not the patient's current finding; a suspicion ("r/o", "?", provisional or
differential) is a red flag in question and counts."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.knowledge import Scenario
from tests.support.builders import (
    CPT,
    ICD10CM,
    PID,
    action_types,
    at,
    concept,
    condition,
    evaluate_now,
    headache,
    hook_request,
    lumbar_puncture,
    service_request,
)

CT_HEAD = concept(CPT, "70450", "CT head without contrast")
ACUTE, RED_FLAGS, AMS = (
    Scenario.PDPH_ACUTE,
    Scenario.PDPH_ACUTE_RED_FLAGS,
    Scenario.ALTERED_MENTAL_STATUS,
)


def family_member_history(text: str) -> dict[str, Any]:
    return {
        "resourceType": "FamilyMemberHistory",
        "status": "completed",
        "patient": {"reference": f"Patient/{PID}"},
        "relationship": {"text": "mother"},
        "condition": [{"code": {"text": text}}],
    }


def outcome(record: list[dict[str, Any]], reason: str = "headache after LP", note: str = "") -> Any:
    order = service_request("sr-1", CT_HEAD, concept(text=reason))
    if note:
        order["note"] = [{"text": note}]
    request = hook_request([order], [lumbar_puncture(30), headache(), *record], hook="order-select")
    if record and record[0]["resourceType"] == "FamilyMemberHistory":
        request["prefetch"]["conditions"]["entry"].append({"resource": record[0]})
    evaluation = evaluate_now(request)
    [decision] = evaluation.decisions
    cards = evaluation.response.to_json_dict()["cards"]
    return decision.scenario, "delete" in action_types(*cards)


def cond(text: str, code: str | None = None, **kw: Any) -> dict[str, Any]:
    return condition(concept(ICD10CM if code else None, code, text), at(10), **kw)


# (what, record, reason, note, expected scenario, cancel offered)
CASES = [
    (
        "Z82.3 'FHx SAH': a family history, understood",
        [cond("FHx SAH", "Z82.3")],
        "headache after LP",
        "",
        ACUTE,
        True,
    ),
    (
        "'Family history of meningitis' in words",
        [cond("Family history of meningitis")],
        "headache after LP",
        "",
        ACUTE,
        True,
    ),
    (
        "'mother had meningitis'",
        [cond("mother had meningitis")],
        "headache after LP",
        "",
        ACUTE,
        True,
    ),
    (
        "a FamilyMemberHistory of SAH is never read",
        [family_member_history("Subarachnoid haemorrhage")],
        "headache after LP",
        "",
        ACUTE,
        True,
    ),
    (
        "'return if fever or neck stiffness' in the note",
        [],
        "headache after LP",
        "return if fever or neck stiffness",
        ACUTE,
        True,
    ),
    (
        "'paracetamol PRN for fever' in the reason",
        [],
        "headache after LP; paracetamol PRN for fever",
        "",
        ACUTE,
        True,
    ),
    ("'h/o meningitis 2015'", [cond("h/o meningitis 2015")], "headache after LP", "", ACUTE, True),
    (
        "meningitis resolved",
        [cond("Meningitis", clinical="resolved")],
        "headache after LP",
        "",
        ACUTE,
        True,
    ),
    (
        "meningitis provisional",
        [cond("Meningitis", verification="provisional")],
        "headache after LP",
        "",
        RED_FLAGS,
        False,
    ),
    (
        "?SAH differential",
        [cond("?SAH", verification="differential")],
        "headache after LP",
        "",
        RED_FLAGS,
        False,
    ),
    ("'r/o SAH' in the reason", [], "headache after LP, r/o SAH", "", RED_FLAGS, False),
    # Cues that must not hide the patient's own finding.
    (
        "'meningitis discussed with ID' is a current concern",
        [cond("meningitis discussed with ID")],
        "headache after LP",
        "",
        RED_FLAGS,
        False,
    ),
    (
        "'previously well ... with new onset seizure'",
        [cond("previously well 28F with new onset seizure")],
        "headache after LP",
        "",
        RED_FLAGS,
        False,
    ),
    (
        "'brought in by her husband with confusion'",
        [cond("brought in by her husband with confusion")],
        "headache after LP",
        "",
        AMS,
        False,
    ),
    (
        "'high risk of SAH' is a concern",
        [cond("high risk of SAH given symptoms")],
        "headache after LP",
        "",
        RED_FLAGS,
        False,
    ),
    (
        "'to see if bleed' is a bleed in question",
        [],
        "headache after LP, CT to see if bleed",
        "",
        RED_FLAGS,
        False,
    ),
    (
        "a relative who noticed the patient's confusion",
        [cond("mother had noticed her confusion")],
        "headache after LP",
        "",
        AMS,
        False,
    ),
    (
        "the patient's own seizure witnessed by her husband",
        [cond("husband witnessed a seizure")],
        "headache after LP",
        "",
        RED_FLAGS,
        False,
    ),
]


@pytest.mark.parametrize(
    ("record", "reason", "note", "expected", "cancel"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_whose_finding(
    record: list[dict[str, Any]], reason: str, note: str, expected: Scenario, cancel: bool
) -> None:
    assert outcome(record, reason, note) == (expected, cancel)
