"""The would-have-fired report (SPEC §6) over a synthetic fortnight on a controlled clock: a silent week
(CDS_SILENT_SCENARIOS=all, ISO week 2026-W47), then a live week (2026-W48) with the clinicians'
answers; as JSON, CSV and the command line; the replay harness's calls counted nowhere."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cds_service.cli import cli
from cds_service.config import HOOKS_DIR, get_settings
from cds_service.knowledge.registry import load_services
from cds_service.persistence.firing import calendar_periods, firing_window, period_of
from tests.go_live_helpers import (
    DSM,
    SEVERE,
    MovableClock,
    feedback_item,
    send_feedback,
    ward_day,
)
from tests.ops_helpers import _iso, settings_for
from tests.support.cli import CliRunner
from tests.support.client import app_client

SILENT_WEEK = datetime(2026, 11, 16, tzinfo=UTC)  # Monday of ISO week 2026-W47
LIVE_WEEK = datetime(2026, 11, 23, tzinfo=UTC)  # Monday of 2026-W48
SINCE, UNTIL = SILENT_WEEK, LIVE_WEEK + timedelta(days=7)
COUNTS = ("hookCalls", "ordersEvaluated", "cardsShown", "cardsWithheld", "accepted", "overridden")


async def fortnight(url: str) -> MovableClock:
    """Seven silent days, then seven live days with feedback on the live week's cards."""
    clock = MovableClock(SILENT_WEEK)
    async with app_client(settings_for(url, silent_scenarios="all"), clock=clock) as client:
        for day in range(7):
            shown = await ward_day(client, clock, SILENT_WEEK + timedelta(days=day), f"s{day}")
            assert shown == {}, "silent mode returned a card"
    async with app_client(settings_for(url), clock=clock) as client:
        cards: dict[str, list[str]] = {}
        for day in range(7):
            shown = await ward_day(client, clock, LIVE_WEEK + timedelta(days=day), f"l{day}")
            for scenario, uuids in shown.items():
                cards.setdefault(scenario, []).extend(uuids)
        assert {s: len(u) for s, u in cards.items()} == {
            "pdph-acute": 14,
            "pdph-acute-red-flags": 7,
            "pdph-persistent": 7,
        }
        at = LIVE_WEEK + timedelta(days=6, hours=20)
        acute, fever, late = (
            cards["pdph-acute"],
            cards["pdph-acute-red-flags"],
            cards["pdph-persistent"],
        )
        await send_feedback(
            client,
            [
                *(feedback_item(uuid, "accepted", accepted=["s-1"], at=at) for uuid in acute[:3]),
                *(feedback_item(uuid, at=at, **SEVERE) for uuid in acute[3:7]),
                feedback_item(acute[6], at=at, **SEVERE),  # the EHR sent it twice
                feedback_item(acute[7], at=at),  # overridden without a reason
                *(feedback_item(uuid, "accepted", at=at) for uuid in fever[:5]),
                *(feedback_item(uuid, at=at, **DSM) for uuid in late[:2]),
            ],
        )
    return clock


def _counts(row: dict[str, Any]) -> tuple[int, ...]:
    return tuple(row[name] for name in COUNTS)


@pytest.mark.anyio
async def test_a_silent_week_then_a_live_week(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.sqlite3"
    clock = await fortnight(url)
    clock.now = UNTIL + timedelta(hours=9)
    version = next(iter(load_services(HOOKS_DIR).values())).knowledge.fingerprint
    async with app_client(settings_for(url), clock=clock) as client:
        response = await client.get(
            "/analytics/firing", params={"since": _iso(SINCE), "until": _iso(UNTIL), "by": "week"}
        )
        by_day = await client.get(
            "/analytics/firing",
            params={
                "since": _iso(LIVE_WEEK),
                "until": _iso(LIVE_WEEK + timedelta(days=1)),
                "by": "day",
            },
        )
        as_csv = await client.get(
            "/analytics/firing",
            params={"since": _iso(SINCE), "until": _iso(UNTIL), "format": "csv"},
        )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["by"] == "week" and report["periodKind"] == "ISO week (Monday to Sunday, UTC)"
    rows = {(r["period"], r["scenario"]): r for r in report["rows"]}
    assert {r["knowledge"] for r in report["rows"]} == {version}
    # hook calls, orders evaluated, cards shown, cards withheld, accepted, overridden
    assert {key: _counts(row) for key, row in rows.items()} == {
        ("2026-W47", "pdph-acute"): (14, 14, 0, 14, 0, 0),
        ("2026-W47", "pdph-acute-red-flags"): (7, 7, 0, 7, 0, 0),
        ("2026-W47", "pdph-persistent"): (7, 7, 0, 7, 0, 0),
        ("2026-W48", "pdph-acute"): (14, 14, 14, 0, 3, 5),
        ("2026-W48", "pdph-acute-red-flags"): (7, 7, 7, 0, 5, 0),
        ("2026-W48", "pdph-persistent"): (7, 7, 7, 0, 0, 2),
    }
    assert rows[("2026-W48", "pdph-acute")]["overrideReasons"] == [
        {"code": "severe-refractory", "display": "Severe or refractory headache", "overridden": 4},
        {"code": None, "display": None, "overridden": 1},
    ]
    assert rows[("2026-W48", "pdph-persistent")]["overrideReasons"] == [
        {"code": "dsm-unavailable", "display": "DSM not available here", "overridden": 2}
    ]
    periods = [(p["period"], p["start"], p["partial"], _counts(p)) for p in report["periods"]]
    assert periods == [
        ("2026-W47", "2026-11-16T00:00:00Z", False, (28, 28, 0, 28, 0, 0)),
        ("2026-W48", "2026-11-23T00:00:00Z", False, (28, 28, 28, 0, 8, 7)),
    ]

    day = by_day.json()
    assert [(p["period"], _counts(p)) for p in day["periods"]] == [
        ("2026-11-23", (4, 4, 4, 0, 3, 1))  # the first day's cards got 3 acceptances, 1 override
    ]
    assert day["periodKind"] == "calendar day (UTC)"

    assert as_csv.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(lines) == 6
    live_acute = next(
        line for line in lines if line["period"] == "2026-W48" and line["scenario"] == "pdph-acute"
    )
    assert live_acute["cards_shown"] == "14" and live_acute["accepted"] == "3"
    assert live_acute["override_reasons"] == "severe-refractory: 4; (no reason): 1"
    assert live_acute["period_kind"] == "ISO week (Monday to Sunday, UTC)"


@pytest.mark.anyio
async def test_every_audit_row_records_the_silent_mode_and_the_harness_mark(
    tmp_path: Path,
) -> None:
    from sqlalchemy import select

    from cds_service.persistence.store import FeedbackStore, audit

    url = f"sqlite:///{tmp_path}/store.sqlite3"
    clock = MovableClock(SILENT_WEEK)
    settings = settings_for(url, silent_scenarios="pdph-acute, pdph-persistent")
    async with app_client(settings, clock=clock) as client:
        await ward_day(client, clock, SILENT_WEEK, "d0")
    store = FeedbackStore(url)
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(
                audit.c.hook_instance,
                audit.c.cards_shown,
                audit.c.cards_withheld,
                audit.c.silent_scenarios,
                audit.c.silent_system_actions,
                audit.c.traffic,
                audit.c.knowledge,
            ).order_by(audit.c.id)
        ).all()
    assert [tuple(r[:6]) for r in rows] == [
        ("d0-acute-a", 0, 1, "pdph-acute,pdph-persistent", False, None),
        ("d0-acute-b", 0, 1, "pdph-acute,pdph-persistent", False, None),
        ("d0-fever", 1, 0, "pdph-acute,pdph-persistent", False, None),
        ("d0-late", 0, 1, "pdph-acute,pdph-persistent", False, None),
        ("d0-replayed", 0, 1, "pdph-acute,pdph-persistent", False, "replay"),
    ]
    assert all(r.knowledge for r in rows)


@pytest.mark.anyio
async def test_the_cli_prints_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/store.sqlite3"
    await fortnight(url)
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    window = ["--since", _iso(SINCE), "--until", _iso(UNTIL)]
    try:
        table = CliRunner().invoke(cli, ["analytics", "firing", *window])
        as_json = CliRunner().invoke(cli, ["analytics", "firing", *window, "--format", "json"])
        as_csv = CliRunner().invoke(cli, ["analytics", "firing", *window, "--format", "csv"])
        daily = CliRunner().invoke(cli, ["analytics", "firing", *window, "--by", "day"])
        wrong = CliRunner().invoke(cli, ["analytics", "firing", "--by", "month"])
        naive = CliRunner().invoke(cli, ["analytics", "firing", "--since", "2026-11-01T00:00"])
        overrides = CliRunner().invoke(cli, ["analytics", *window])
    finally:
        get_settings.cache_clear()
    assert table.exit_code == 0, table.output
    lines = [line.split() for line in table.output.splitlines()]
    assert lines[0][:5] == ["Would", "have", "fired,", "per", "ISO"]
    assert any(
        line[:2] == ["2026-W48", "pdph-acute"] and line[3:9] == ["14", "14", "14", "0", "3", "5"]
        for line in lines
    )
    assert any(
        line[:2] == ["2026-W47", "total"] and line[2:5] == ["28", "28", "0"] for line in lines
    )
    assert as_json.exit_code == 0 and '"cardsWithheld": 14' in as_json.output
    assert as_csv.exit_code == 0 and as_csv.output.startswith("period,period_kind,scenario")
    assert daily.exit_code == 0 and "2026-11-29" in daily.output
    assert wrong.exit_code == 2 and len(wrong.output.strip().splitlines()) == 1
    assert naive.exit_code == 2 and "time zone offset" in naive.output
    assert overrides.exit_code == 0 and "Cards shown, accepted and overridden" in overrides.output


@pytest.mark.anyio
async def test_bad_parameters_are_400_not_500(tmp_path: Path) -> None:
    async with app_client(settings_for(f"sqlite:///{tmp_path}/store.sqlite3")) as client:
        answers = [
            await client.get("/analytics/firing", params=params)
            for params in (
                {"by": "month"},
                {"format": "xml"},
                {"since": "yesterday"},
                {"since": "2026-11-01T00:00:00"},
                {"since": "2026-11-20T00:00:00Z", "until": "2026-11-10T00:00:00Z"},
                {"since": "1990-01-01T00:00:00Z", "by": "day"},
                {"since": "0001-01-01T00:00:00Z"},
                {"until": "9999-12-31T23:59:59Z", "since": "9999-12-01T00:00:00Z"},
                {"until": "0001-01-01T00:30:00+01:00"},
            )
        ]
        empty = await client.get("/analytics/firing")
    assert [a.status_code for a in answers] == [400] * 9
    assert all(a.json()["error"] in ("invalid-query", "invalid-window") for a in answers)
    assert "by week" in answers[5].json()["message"]
    assert empty.status_code == 200
    report = empty.json()
    assert report["rows"] == [] and len(report["periods"]) == 8
    assert report["periods"][-1]["partial"] is True  # the current week, up to now


def test_calendar_periods_are_days_and_iso_weeks() -> None:
    thursday = datetime(2026, 12, 31, 15, tzinfo=UTC)
    week = period_of(thursday.date(), "week")
    assert (week.label, week.start, week.end) == (
        "2026-W53",
        datetime(2026, 12, 28, tzinfo=UTC),
        datetime(2027, 1, 4, tzinfo=UTC),
    )
    assert period_of(datetime(2027, 1, 3).date(), "week").label == "2026-W53"
    assert period_of(datetime(2027, 1, 4).date(), "week").label == "2027-W01"
    since, until = firing_window(None, thursday, "week", thursday)
    assert since == datetime(2026, 11, 9, tzinfo=UTC) and until == thursday
    assert [p.label for p in calendar_periods(since, until, "week")][-2:] == [
        "2026-W52",
        "2026-W53",
    ]
    since, _ = firing_window(None, thursday, "day", thursday)
    assert since == datetime(2026, 12, 18, tzinfo=UTC)
    with pytest.raises(ValueError, match="by week"):
        firing_window(datetime(2020, 1, 1, tzinfo=UTC), thursday, "day", thursday)


def test_migration_0006_counts_the_cards_of_earlier_rows_as_shown(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import text

    from cds_service.persistence.migrations import alembic_config
    from cds_service.persistence.store import FeedbackStore

    store = FeedbackStore(f"sqlite:///{tmp_path}/old.sqlite3")
    with store.engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0005")
        connection.execute(
            text(
                "INSERT INTO audit (id, hook_instance, service_id, scenario, rating, study_type, "
                "latency_ms, evaluated_at) VALUES (7, 'h', 's', 'pdph-acute', 'r', 'ct', 1, "
                "'2026-11-24 15:30:00.000000')"
            )
        )
        connection.execute(
            text("INSERT INTO audit_card (card_uuid, audit_id, indicator) VALUES ('c', 7, 'info')")
        )
    assert store.migrate() == ("0005", "0006")
    with store.engine.connect() as connection:
        row = connection.execute(
            text("SELECT cards_shown, cards_withheld, traffic FROM audit WHERE id = 7")
        ).one()
        indexes = {r[1] for r in connection.exec_driver_sql("PRAGMA index_list('audit')").all()}
    assert tuple(row) == (1, 0, None)
    assert "ix_audit_report" in indexes and "ix_audit_evaluated_at" not in indexes


@pytest.mark.anyio
async def test_the_analytics_page_labels_each_bar_by_its_iso_week(tmp_path: Path) -> None:
    """Today's cards are under this week's label (the page labelled bars by the start of a rolling
    7-day window: a Tuesday's activity appeared under the Tuesday a week before)."""
    import re

    url = f"sqlite:///{tmp_path}/store.sqlite3"
    tuesday = LIVE_WEEK + timedelta(days=1)  # 2026-11-24, in 2026-W48
    clock = MovableClock(tuesday)
    async with app_client(settings_for(url, silent_scenarios="sih"), clock=clock) as client:
        await ward_day(client, clock, tuesday, "t")
        page = (await client.get("/analytics")).text
    labels = re.findall(r'font-size="10">([^<]+)</text>', page)
    assert labels[-2:] == ["W48", "23 Nov"] and labels[:2] == ["W41", "05 Oct"]
    shown = re.findall(r'<rect class="bar shown"[^>]*><title>([^<]+)</title>', page)
    assert shown[-1] == "2026-W48 (partial): 4 shown" and shown[-2] == "2026-W47: 0 shown"
    assert "Silent mode: cards withheld for sih; system actions returned." in page
