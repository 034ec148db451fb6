"""Silent mode (SPEC §6): a silenced scenario is evaluated, audited and counted, but its cards are not
returned; system actions have their own switch; the setting is validated at start-up against the
knowledge's scenarios and shown on /readyz and in the metrics. Harness and demo calls are marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from cds_service.api.app import create_app
from cds_service.config import Settings
from cds_service.golive.silent import SilentModeError
from cds_service.golive.traffic import TRAFFIC_HEADER, traffic_mark
from cds_tools.replay import replay_fixture
from tests.go_live_helpers import post_hook
from tests.ops_helpers import hook_request, metric, settings_for
from tests.support.client import app_client

DEMO_JS = Path(__file__).resolve().parent.parent / "cds_tools" / "static" / "demo" / "demo.js"


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return settings_for(f"sqlite:///{tmp_path}/store.sqlite3", **overrides)


def test_an_unknown_scenario_stops_start_up_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(SilentModeError) as raised:
        create_app(_settings(tmp_path, silent_scenarios="pdph-acute,pdph-acutte"))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("CDS_SILENT_SCENARIOS: no scenario 'pdph-acutte' in the knowledge")
    assert "pdph-persistent" in message and "`all`" in message


def test_all_is_all_and_none_is_none() -> None:
    with pytest.raises(ValidationError, match="either `all` or a list"):
        Settings(silent_scenarios="all,pdph-acute")
    assert Settings(silent_scenarios=" none ").silent_scenario_codes() == frozenset()
    assert Settings(silent_scenarios="").silent_scenario_codes() == frozenset()
    assert Settings(silent_scenarios="sih, thunderclap,").silent_scenario_codes() == {
        "sih",
        "thunderclap",
    }


@pytest.mark.anyio
async def test_a_silenced_scenario_is_evaluated_and_counted_but_not_shown(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, silent_scenarios="pdph-acute")
    before = metric(
        "cds_scenario_fired_total",
        service="pdph-imaging-order-select",
        scenario="pdph-acute",
        delivery="withheld",
    )
    async with app_client(settings) as client:
        acute = await client.post(
            "/cds-services/pdph-imaging-order-select", json=hook_request("acute")
        )
        fever = await post_hook(client, hook_request("fever", temperature_c=38.6))
        await post_hook(client, hook_request("replayed"), traffic="replay")
        ready = await client.get("/readyz")
        metrics = await client.get("/metrics")
    body = acute.json()
    assert body["cards"] == []
    # PAMA system actions have their own switch: still returned.
    assert [a["type"] for a in body["systemActions"]] == ["update"]
    assert [c["source"]["topic"]["code"] for c in fever] == ["pdph-acute-red-flags"]
    assert ready.json()["silentMode"] == {"scenarios": ["pdph-acute"], "systemActions": False}
    after = metric(
        "cds_scenario_fired_total",
        service="pdph-imaging-order-select",
        scenario="pdph-acute",
        delivery="withheld",
    )
    assert after - before == 1  # the harness's call is not counted
    text = metrics.text
    assert 'cds_silent_mode{scenario="pdph-acute"} 1.0' in text
    assert 'cds_silent_mode{scenario="pdph-acute-red-flags"} 0.0' in text
    assert "cds_silent_system_actions 0.0" in text
    assert 'cds_knowledge_info{knowledge="' in text


@pytest.mark.anyio
async def test_system_actions_have_their_own_switch(tmp_path: Path) -> None:
    settings = _settings(tmp_path, silent_system_actions=True, system_actions_in_extension=True)
    async with app_client(settings) as client:
        answer = await client.post(
            "/cds-services/pdph-imaging-order-select", json=hook_request("acute")
        )
        ready = await client.get("/readyz")
        metrics = await client.get("/metrics")
    body = answer.json()
    assert [c["source"]["topic"]["code"] for c in body["cards"]] == ["pdph-acute"]
    assert "systemActions" not in body and "extension" not in body
    assert ready.json()["silentMode"] == {"scenarios": [], "systemActions": True}
    assert "cds_silent_system_actions 1.0" in metrics.text


@pytest.mark.anyio
async def test_all_silences_every_scenario(tmp_path: Path) -> None:
    async with app_client(_settings(tmp_path, silent_scenarios="all")) as client:
        cards = [
            await post_hook(client, hook_request(f"h{i}", **options))
            for i, options in enumerate([{}, {"temperature_c": 39.0}, {"hours_since_puncture": 96}])
        ]
        ready = await client.get("/readyz")
    assert cards == [[], [], []]
    assert ready.json()["silentMode"]["scenarios"] == "all"


def test_the_mark_is_a_short_word_never_what_was_sent() -> None:
    assert traffic_mark(None) is None and traffic_mark("  ") is None
    assert traffic_mark("Replay") == "replay" and traffic_mark("demo") == "demo"
    assert traffic_mark("Patient/123 <script>") == "test"


@pytest.mark.anyio
async def test_the_replay_harness_and_the_demo_page_mark_their_calls() -> None:
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get(TRAFFIC_HEADER))
        return httpx.Response(200, json={"cards": []})

    transport = httpx.MockTransport(answer)
    async with httpx.AsyncClient(transport=transport, base_url="http://cds") as client:
        fixture = {
            "name": "x",
            "service": "pdph-imaging-order-select",
            "expected": {"cards": []},
            "request": hook_request("x"),
        }
        await replay_fixture(client, fixture)
    assert seen == ["replay"]
    assert '"X-CDS-Traffic": "demo"' in DEMO_JS.read_text(encoding="utf-8")
    assert TRAFFIC_HEADER == "X-CDS-Traffic"
