"""Feedback hygiene (SPEC §4): feedback naming a card this service never issued, another service's
card, or an override reason the card did not offer is stored (nothing a clinician sends is lost) but
flagged, counted in /metrics and kept out of /analytics/overrides."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cds_service.api.deps import runtime_of
from cds_service.persistence.store import feedback
from tests.ops_helpers import (
    NOW,
    SELECT,
    _iso,
    call_hook,
    feedback_item,
    hook_request,
    settings_for,
)
from tests.support.client import app_client

SIGN = "pdph-imaging-order-sign"


@pytest.mark.anyio
async def test_untrustworthy_feedback_is_stored_flagged_and_not_counted(tmp_path: Path) -> None:
    async with app_client(settings_for(f"sqlite:///{tmp_path}/s.sqlite3")) as client:
        [card] = await call_hook(client, hook_request("hygiene-1"))
        answers = [
            feedback_item(card["uuid"], reason="severe-refractory"),  # offered: counted
            feedback_item("never-issued", reason="severe-refractory"),
            feedback_item(card["uuid"], reason="dsm-unavailable", at=NOW - timedelta(minutes=1)),
        ]
        own = await client.post(f"/cds-services/{SELECT}/feedback", json={"feedback": answers})
        other = await client.post(
            f"/cds-services/{SIGN}/feedback",
            json={"feedback": [feedback_item(card["uuid"], at=NOW - timedelta(minutes=2))]},
        )
        summary = (
            await client.get(
                "/analytics/overrides",
                params={
                    "since": _iso(NOW - timedelta(days=1)),
                    "until": _iso(NOW + timedelta(hours=1)),
                },
            )
        ).json()
        metrics = (await client.get("/metrics")).text
        store = runtime_of(client.app).store  # type: ignore[attr-defined]
        with store.engine.connect() as connection:
            flags = sorted(
                (row.card_uuid == card["uuid"], row.flag or "")
                for row in connection.execute(select(feedback.c.card_uuid, feedback.c.flag))
            )
    assert own.json() == {"received": 3, "stored": 3, "flagged": 2}
    assert other.json() == {"received": 1, "stored": 1, "flagged": 1}
    assert flags == [
        (False, "unknown-card"),
        (True, ""),
        (True, "other-service"),
        (True, "reason-not-offered"),
    ]
    assert summary["total"]["overridden"] == 1
    for flag in ("unknown-card", "other-service", "reason-not-offered"):
        assert f'cds_feedback_items_flagged_total{{flag="{flag}"' in metrics
