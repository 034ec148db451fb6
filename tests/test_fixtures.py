"""Every scenario fixture through the real app: the expected scenario, rating, indicator, draft order,
suggestion actions and system actions, as a clinician reading fixtures/README.md would expect. The
comparison is cds_tools.replay's, the same one `cds-service replay --expect` runs."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx
import pytest

from cds_service.knowledge import Scenario
from cds_tools.fixtures import fixture_paths, load_fixture
from cds_tools.replay import replay_fixture
from tests.conftest import NOW

FIXTURES = fixture_paths()


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
async def test_fixture_outcome(path: Path, client: httpx.AsyncClient) -> None:
    result = await replay_fixture(client, load_fixture(path, NOW))
    assert result.passed, "\n".join(result.problems)


@pytest.mark.parametrize(
    ("token", "adult"),
    [
        ("{{date:now-18y}}", True),  # 18 today
        ("{{date:now-17y-364d}}", False),  # 17 years and 364 days
        ("{{date:now-18y+1d}}", False),  # 18 tomorrow
        ("{{date:now-34y}}", True),
    ],
)
def test_fixture_ages_are_calendar_years(token: str, adult: bool) -> None:
    """A story's "18-year-old" is 18 as the service counts ages (calendar years, not 365 days)."""
    from cds_service.fhir.time import youngest_age
    from cds_tools.fixtures import render

    birth = date.fromisoformat(render(token, NOW))  # a FHIR date, as the views parse it
    age = youngest_age(birth, NOW)
    assert age is not None and (age >= 18) is adult
    if token == "{{date:now-34y}}":
        assert age == 34
