"""Every fixture's response against the CDS Hooks 2.0 definitions of a response, card, source,
suggestion, action, link and system action, written from the specification text (HL7 CDS Hooks 2.0,
"CDS Service Response", the attribute tables; quoted next to each rule). Independent of the service's
own pydantic models, so a model that drifts from the spec fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from cds_tools.fixtures import fixture_paths, load_fixture
from tests.conftest import NOW
from tests.support.builders import evaluate_now

# "A relative reference to the relevant resource": [type]/[id] with a FHIR id (R4 `id` datatype).
RELATIVE_REFERENCE = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}")


def check_action(action: dict[str, Any], where: str) -> list[str]:
    problems = []
    # Action.type: REQUIRED string; "Allowed values are: create, update, delete."
    if action.get("type") not in {"create", "update", "delete"}:
        problems.append(f"{where}.type")
    # Action.description: REQUIRED string.
    if not isinstance(action.get("description"), str):
        problems.append(f"{where}.description")
    # Action.resource: CONDITIONAL object; "When the type attribute is create, the resource
    # attribute SHALL contain a new FHIR resource"; for update "the updated resource in its entirety".
    if action.get("type") in {"create", "update"}:
        resource = action.get("resource")
        if not (isinstance(resource, dict) and isinstance(resource.get("resourceType"), str)):
            problems.append(f"{where}.resource")
    # Action.resourceId: CONDITIONAL *string*; "A relative reference to the relevant resource.
    # SHOULD be provided when the type attribute is delete."
    if action.get("type") == "delete":
        rid = action.get("resourceId")
        if not (isinstance(rid, str) and RELATIVE_REFERENCE.fullmatch(rid)):
            problems.append(f"{where}.resourceId must be a relative reference string: {rid!r}")
    if "resourceId" in action and not isinstance(action["resourceId"], str):
        problems.append(f"{where}.resourceId is not a string")
    return problems


def check_coding(coding: Any, where: str, display: bool = False) -> list[str]:
    if not (isinstance(coding, dict) and isinstance(coding.get("code"), str)):
        return [where]
    # overrideReasons: "the CDS Service MUST populate a display value for each reason's Coding".
    if display and not coding.get("display"):
        return [f"{where}.display"]
    return []


def check_card(card: dict[str, Any], where: str) -> list[str]:
    problems = []
    # Card.summary: REQUIRED; "One-sentence, <140-character summary message".
    summary = card.get("summary")
    if not (isinstance(summary, str) and 0 < len(summary) < 140):
        problems.append(f"{where}.summary")
    # Card.detail: OPTIONAL string (GitHub Flavored Markdown).
    if "detail" in card and not isinstance(card["detail"], str):
        problems.append(f"{where}.detail")
    # Card.indicator: REQUIRED; "Allowed values ... info, warning, critical".
    if card.get("indicator") not in {"info", "warning", "critical"}:
        problems.append(f"{where}.indicator")
    # Card.source: REQUIRED object; Source.label REQUIRED string; url OPTIONAL absolute URL;
    # topic OPTIONAL Coding.
    source = card.get("source")
    if not (isinstance(source, dict) and isinstance(source.get("label"), str)):
        problems.append(f"{where}.source.label")
    elif "url" in source and not str(source["url"]).startswith(("http://", "https://")):
        problems.append(f"{where}.source.url")
    elif "topic" in source:
        problems += check_coding(source["topic"], f"{where}.source.topic")
    # Card.suggestions: OPTIONAL array; "If suggestions are present, selectionBehavior MUST also be
    # provided"; selectionBehavior "Allowed values are: at-most-one ... any".
    suggestions = card.get("suggestions", [])
    if suggestions and card.get("selectionBehavior") not in {"at-most-one", "any"}:
        problems.append(f"{where}.selectionBehavior")
    for i, suggestion in enumerate(suggestions):
        here = f"{where}.suggestions[{i}]"
        # Suggestion.label REQUIRED string; uuid OPTIONAL string; isRecommended OPTIONAL boolean;
        # actions OPTIONAL array of Action.
        if not isinstance(suggestion.get("label"), str):
            problems.append(f"{here}.label")
        if "isRecommended" in suggestion and not isinstance(suggestion["isRecommended"], bool):
            problems.append(f"{here}.isRecommended")
        for j, action in enumerate(suggestion.get("actions", [])):
            problems += check_action(action, f"{here}.actions[{j}]")
    for i, reason in enumerate(card.get("overrideReasons", [])):
        problems += check_coding(reason, f"{where}.overrideReasons[{i}]", display=True)
    # Link: label REQUIRED string, url REQUIRED URL, type REQUIRED "absolute" or "smart";
    # appContext "should only be valued if the link type is smart".
    for i, link in enumerate(card.get("links", [])):
        here = f"{where}.links[{i}]"
        if not isinstance(link.get("label"), str) or link.get("type") not in {"absolute", "smart"}:
            problems.append(here)
        if link.get("type") == "absolute" and not str(link.get("url")).startswith("http"):
            problems.append(f"{here}.url")
        if "appContext" in link and link.get("type") != "smart":
            problems.append(f"{here}.appContext")
    return problems


def check_response(response: dict[str, Any]) -> list[str]:
    # CDS Service Response: cards REQUIRED array; systemActions OPTIONAL array of Action.
    problems = [] if isinstance(response.get("cards"), list) else ["cards"]
    for i, card in enumerate(response.get("cards", [])):
        problems += check_card(card, f"cards[{i}]")
    for i, action in enumerate(response.get("systemActions", [])):
        problems += check_action(action, f"systemActions[{i}]")
    return problems


# Every fixture, without and with confirmations: evaluated in the test, not at collection (which
# every pytest-xdist worker repeats).
RESPONSES = [(path, confirm) for path in fixture_paths() for confirm in (False, True)]


@pytest.mark.parametrize(("path", "confirm"), RESPONSES, ids=[r[0].stem for r in RESPONSES])
def test_fixture_response_meets_the_cds_hooks_definitions(path: Path, confirm: bool) -> None:
    evaluation = evaluate_now(
        load_fixture(path, NOW)["request"], confirm_appropriate_orders=confirm
    )
    assert check_response(evaluation.response.to_json_dict()) == []


def test_the_checker_catches_the_list_shaped_resource_id() -> None:
    """The defect HealthChain's models found: a delete action's resourceId as a list."""
    bad = {"type": "delete", "description": "x", "resourceId": ["ServiceRequest/1"]}
    assert check_action(bad, "a")
    assert (
        check_action({"type": "delete", "description": "x", "resourceId": "ServiceRequest/1"}, "a")
        == []
    )
