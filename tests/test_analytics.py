"""Override analytics from fixture-like hook calls and feedback: the API, the CLI table, the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cds_service.cli import cli
from cds_service.config import get_settings
from cds_service.persistence.analytics import window
from tests.ops_helpers import (
    NOW,
    _iso,
    settings_for,
    ward_day,
)
from tests.support.cli import CliRunner
from tests.support.client import app_client

SINCE = NOW - timedelta(days=1)
UNTIL = NOW + timedelta(hours=1)


def _by_scenario(summary: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    return {
        s["scenario"]: (s["shown"], s["accepted"], s["overridden"]) for s in summary["scenarios"]
    }


@pytest.mark.anyio
async def test_overrides_per_scenario_and_reason(tmp_path: Path) -> None:
    async with app_client(settings_for(f"sqlite:///{tmp_path}/store.sqlite3")) as client:
        await ward_day(client)
        response = await client.get(
            "/analytics/overrides", params={"since": _iso(SINCE), "until": _iso(UNTIL)}
        )
    assert response.status_code == 200
    summary = response.json()
    assert _by_scenario(summary) == {
        "pdph-acute": (3, 1, 2),
        "pdph-acute-red-flags": (1, 1, 0),
        "pdph-persistent": (2, 0, 2),
    }  # the feedback for a card this service never issued is flagged, not counted
    reasons = {s["scenario"]: s["overrideReasons"] for s in summary["scenarios"]}
    assert reasons["pdph-acute"] == [
        {"code": "severe-refractory", "display": "Severe or refractory headache", "overridden": 2}
    ]
    assert reasons["pdph-persistent"] == [
        {"code": "dsm-unavailable", "display": "DSM not available here", "overridden": 1},
        {"overridden": 1},
    ]
    assert summary["total"] == {
        "scenario": "total",
        "shown": 6,
        "accepted": 2,
        "overridden": 4,
        "overrideReasons": [],
    }


@pytest.mark.anyio
async def test_the_window_excludes_other_days_and_rejects_bad_instants(tmp_path: Path) -> None:
    async with app_client(settings_for(f"sqlite:///{tmp_path}/store.sqlite3")) as client:
        await ward_day(client)
        earlier = await client.get(
            "/analytics/overrides",
            params={"since": "2026-10-01T00:00:00Z", "until": "2026-11-20T00:00:00+01:00"},
        )
        naive = await client.get("/analytics/overrides", params={"since": "2026-11-01T00:00:00"})
        backwards = await client.get(
            "/analytics/overrides",
            params={"since": _iso(UNTIL), "until": _iso(SINCE)},
        )
        garbage = await client.get("/analytics/overrides", params={"until": "yesterday"})
    assert _by_scenario(earlier.json()) == {"pdph-acute": (0, 0, 1)}
    assert naive.status_code == backwards.status_code == garbage.status_code == 400
    assert naive.json()["error"] == "invalid-window"


def test_default_window_is_the_last_30_days() -> None:
    now = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
    assert window(None, None, now) == (now - timedelta(days=30), now)
    until = datetime(2026, 6, 1, tzinfo=UTC)
    assert window(None, until, now) == (until - timedelta(days=30), until)


@pytest.mark.anyio
async def test_cli_prints_the_same_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/store.sqlite3"
    async with app_client(settings_for(url)) as client:
        await ward_day(client)
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            cli, ["analytics", "--since", _iso(SINCE), "--until", _iso(UNTIL)]
        )
        bad = CliRunner().invoke(cli, ["analytics", "--since", "not-a-date"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        "Cards shown, accepted and overridden from 2026-11-23T15:30:00Z to 2026-11-24T16:30:00Z"
    )
    rows = [line.split() for line in lines[4:]]
    assert ["pdph-acute", "(all)", "3", "1", "2"] in rows
    assert ["severe-refractory:", "Severe", "or", "refractory", "headache", "2"] in rows
    assert ["pdph-persistent", "(all)", "2", "0", "2"] in rows
    assert ["(no", "reason)", "1"] in rows
    assert not any(row[0] == "unknown" for row in rows)
    assert rows[-1] == ["total", "6", "2", "4"]
    assert bad.exit_code != 0
