"""The replay harness: the comparison itself, and `cds-service replay` in-process and against a running
service, as integrators run it in CI."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from cds_service.api.app import create_app
from cds_service.config import Settings
from cds_service.pipeline.pama import PAMA_EXTENSION
from cds_tools.cli import cli
from cds_tools.fixtures import FIXTURES_DIR, fixture_paths
from cds_tools.replay import compare, observed_outcome, service_base_url
from tests.demo_helpers import running_server, without_auth
from tests.support.cli import CliRunner

runner = CliRunner()
SEED = FIXTURES_DIR / "seed-persistent-45f-4-days-after-lp.json"

EXPECTED: dict[str, Any] = {
    "cards": [
        {
            "scenario": "pdph-persistent",
            "rating": "usually-not-appropriate",
            "indicator": "warning",
            "draftOrder": "ServiceRequest/sr-mri-brain",
            "suggestions": [["delete", "create"]],
            "hoursSincePuncture": 96.0,
        }
    ],
    "systemActions": [
        {"draftOrder": "ServiceRequest/sr-mri-brain", "pamaRating": "not-appropriate"}
    ],
}


def test_identical_outcomes_agree() -> None:
    assert compare(EXPECTED, copy.deepcopy(EXPECTED)) == []


def test_each_difference_is_named() -> None:
    observed = copy.deepcopy(EXPECTED)
    observed["cards"][0]["rating"] = "not-rated"
    observed["cards"][0]["suggestions"] = [["delete"]]
    observed["systemActions"][0]["pamaRating"] = "appropriate"
    assert compare(EXPECTED, observed) == [
        "card 1 rating: expected usually-not-appropriate, got not-rated",
        "card 1 suggestions: expected [delete+create], got [delete]",
        "systemActions: expected [ServiceRequest/sr-mri-brain not-appropriate], "
        "got [ServiceRequest/sr-mri-brain appropriate]",
    ]


def test_card_count_and_hours() -> None:
    assert compare(EXPECTED, {"cards": [], "systemActions": EXPECTED["systemActions"]}) == [
        "expected 1 card(s), got 0"
    ]
    close = copy.deepcopy(EXPECTED)
    close["cards"][0]["hoursSincePuncture"] = 96.1
    assert compare(EXPECTED, close) == []
    far = copy.deepcopy(EXPECTED)
    far["cards"][0]["hoursSincePuncture"] = 97.0
    assert compare(EXPECTED, far) == ["card 1 hoursSincePuncture: expected 96.0, got 97.0"]


def test_hours_are_compared_only_where_the_fixture_states_them() -> None:
    expected = copy.deepcopy(EXPECTED)
    del expected["cards"][0]["hoursSincePuncture"]
    assert compare(expected, EXPECTED) == []


def test_observed_outcome_reads_the_pama_rating_by_its_extension_url() -> None:
    response = {
        "cards": [],
        "systemActions": [
            {
                "type": "update",
                "description": "d",
                "resource": {
                    "resourceType": "ServiceRequest",
                    "id": "x",
                    "extension": [
                        {"url": "urn:other", "valueString": "y"},
                        {
                            "url": PAMA_EXTENSION,
                            "valueCodeableConcept": {"coding": [{"code": "appropriate"}]},
                        },
                    ],
                },
            }
        ],
    }
    assert observed_outcome(response) == {
        "cards": [],
        "systemActions": [{"draftOrder": "ServiceRequest/x", "pamaRating": "appropriate"}],
    }


def test_service_base_url_accepts_the_discovery_url() -> None:
    assert service_base_url("http://h:8080/cds-services/") == "http://h:8080"
    assert service_base_url("http://h:8080/") == "http://h:8080"


def table_rows(output: str) -> list[list[str]]:
    return [line.split()[:2] for line in output.splitlines() if line.startswith(("PASS", "FAIL"))]


def test_replay_every_fixture_in_process() -> None:
    result = runner.invoke(cli, ["replay", str(FIXTURES_DIR), "--expect"])
    assert result.exit_code == 0, result.output
    names = [p.stem for p in fixture_paths()]
    assert table_rows(result.stdout) == [["PASS", name] for name in names]
    assert f"{len(names)} fixtures: {len(names)} as expected, 0 not" in result.stdout


def test_replay_reports_a_mismatch_and_fails_with_expect(tmp_path: Path) -> None:
    fixture = json.loads(SEED.read_text(encoding="utf-8"))
    fixture["expected"]["cards"][0]["indicator"] = "info"
    wrong = tmp_path / "wrong-indicator.json"
    wrong.write_text(json.dumps(fixture), encoding="utf-8")

    result = runner.invoke(cli, ["replay", str(SEED), str(wrong), "--expect"])
    assert result.exit_code == 1
    assert table_rows(result.stdout) == [
        ["PASS", "seed-persistent-45f-4-days-after-lp"],
        ["FAIL", "wrong-indicator"],
    ]
    assert "card 1 indicator: expected info, got warning" in result.stdout
    assert "2 fixtures: 1 as expected, 1 not" in result.stdout

    without_expect = runner.invoke(cli, ["replay", str(wrong)])
    assert without_expect.exit_code == 0
    assert "FAIL" in without_expect.stdout


@pytest.mark.slow  # a real server
def test_replay_against_a_running_service(settings: Settings) -> None:
    app = create_app(without_auth(settings))
    with running_server(app) as base_url:
        result = runner.invoke(
            cli, ["replay", str(FIXTURES_DIR), "--expect", "--url", f"{base_url}/cds-services"]
        )
    assert result.exit_code == 0, result.output
    assert all(row[0] == "PASS" for row in table_rows(result.stdout))
    assert len(table_rows(result.stdout)) == len(fixture_paths())


def test_replay_refuses_now_with_url() -> None:
    result = runner.invoke(
        cli, ["replay", str(SEED), "--url", "http://127.0.0.1:9", "--now", "2030-01-01T00:00:00Z"]
    )
    assert result.exit_code == 2


def test_replay_of_an_empty_folder(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["replay", str(tmp_path), "--expect"])
    assert result.exit_code == 2
    assert "no fixture files (*.json) in this folder" in result.output
