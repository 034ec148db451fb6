"""Shared helpers of the go-live tests: a clock the test moves, and a synthetic ward of hook calls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from cds_service.golive.traffic import TRAFFIC_HEADER
from tests.ops_helpers import MRI_BRAIN, SELECT, feedback_item, hook_request, service_of

SEVERE = {"reason": "severe-refractory", "display": "Severe or refractory headache"}
DSM = {"reason": "dsm-unavailable", "display": "DSM not available here"}


@dataclass
class MovableClock:
    """The app's clock, moved by the test."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


async def post_hook(
    client: httpx.AsyncClient, request: dict[str, Any], traffic: str | None = None
) -> list[dict[str, Any]]:
    headers = {TRAFFIC_HEADER: traffic} if traffic else {}
    response = await client.post(
        f"/cds-services/{service_of(request)}", json=request, headers=headers
    )
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


async def ward_day(
    client: httpx.AsyncClient, clock: MovableClock, day: datetime, tag: str
) -> dict[str, list[str]]:
    """One day of a ward, each call a different patient: two acute post-puncture headaches with a
    CT head drafted (pdph-acute), one with fever (pdph-acute-red-flags), one four days after the
    puncture with an MRI brain drafted (pdph-persistent), and one call of the replay harness, which
    no report counts. The uuids of the cards returned, per scenario."""
    plan = [
        ("acute-a", "pdph-acute", {}),
        ("acute-b", "pdph-acute", {}),
        ("fever", "pdph-acute-red-flags", {"temperature_c": 38.6}),
        ("late", "pdph-persistent", {"hours_since_puncture": 96, "study": MRI_BRAIN}),
    ]
    shown: dict[str, list[str]] = {}
    for hour, (name, scenario, options) in enumerate(plan, start=9):
        clock.now = day + timedelta(hours=hour)
        instance = f"{tag}-{name}"
        cards = await post_hook(
            client, hook_request(instance, patient=f"p-{instance}", now=clock.now, **options)
        )
        if cards:
            shown.setdefault(scenario, []).extend(card["uuid"] for card in cards)
    clock.now = day + timedelta(hours=17)
    await post_hook(client, hook_request(f"{tag}-replayed", now=clock.now), traffic="replay")
    return shown


async def send_feedback(client: httpx.AsyncClient, items: list[dict[str, Any]]) -> None:
    response = await client.post(f"/cds-services/{SELECT}/feedback", json={"feedback": items})
    assert response.status_code == 200, response.text


__all__ = [
    "DSM",
    "SEVERE",
    "MovableClock",
    "feedback_item",
    "post_hook",
    "send_feedback",
    "ward_day",
]
