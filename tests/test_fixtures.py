"""Every scenario fixture through the real app: the expected scenario, rating, indicator, draft order,
suggestion actions and system actions, as a clinician reading fixtures/README.md would expect."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cds_service.fixture_loader import fixture_paths, load_fixture
from cds_service.knowledge import Scenario
from tests.conftest import NOW

FIXTURES = fixture_paths()


def observed_cards(response: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for card in response["cards"]:
        summary: dict[str, Any] = {
            "scenario": card["source"]["topic"]["code"],
            "rating": card["extension"]["pdph-imaging.rating"],
            "indicator": card["indicator"],
            "draftOrder": card["extension"]["pdph-imaging.draft-order"],
            "suggestions": [[a["type"] for a in s["actions"]] for s in card.get("suggestions", [])],
        }
        if "pdph-imaging.hours-since-puncture" in card["extension"]:
            summary["hoursSincePuncture"] = card["extension"]["pdph-imaging.hours-since-puncture"]
        out.append(summary)
    return out


def test_there_are_fixtures_for_every_scenario() -> None:
    scenarios = {
        card["scenario"]
        for path in FIXTURES
        for card in load_fixture(path, NOW)["expected"]["cards"]
    }
    assert scenarios == {s.value for s in Scenario}
    assert sum(1 for p in FIXTURES if not load_fixture(p, NOW)["expected"]["cards"]) >= 5


@pytest.mark.anyio
@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
async def test_fixture_outcome(path: Any, client: httpx.AsyncClient) -> None:
    fx = load_fixture(path, NOW)
    response = await client.post(f"/cds-services/{fx['service']}", json=fx["request"])
    assert response.status_code == 200, response.text
    body = response.json()
    expected_cards = fx["expected"]["cards"]
    observed = observed_cards(body)
    for exp, obs in zip(expected_cards, observed, strict=False):
        if "hoursSincePuncture" not in exp:
            obs.pop("hoursSincePuncture", None)
    assert observed == expected_cards
    actions = [
        {
            "draftOrder": f"ServiceRequest/{a['resource']['id']}",
            "pamaRating": a["resource"]["extension"][0]["valueCodeableConcept"]["coding"][0][
                "code"
            ],
        }
        for a in body.get("systemActions", [])
    ]
    assert actions == fx["expected"]["systemActions"]
