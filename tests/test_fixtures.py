"""Every scenario fixture through the real app: the expected scenario, rating, indicator, draft order,
suggestion actions and system actions, as a clinician reading fixtures/README.md would expect. The
comparison is cds_tools.replay's, the same one `cds-service replay --expect` runs."""

from __future__ import annotations

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
