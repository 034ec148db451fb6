"""The `cds-service` command line: evaluate (fixture files, --pretty), discovery, fixtures-table."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from cds_service.config import Settings
from cds_tools.cli import cli
from cds_tools.fixture_docs import fixtures_readme
from cds_tools.fixtures import FIXTURES_DIR, load_fixture
from tests.conftest import NOW
from tests.support.cli import CliRunner

runner = CliRunner()
SEED = FIXTURES_DIR / "seed-persistent-45f-4-days-after-lp.json"


def test_evaluate_renders_a_fixtures_time_tokens() -> None:
    result = runner.invoke(cli, ["evaluate", str(SEED)])
    assert result.exit_code == 0, result.output
    [card] = json.loads(result.stdout)["cards"]
    assert card["source"]["topic"]["code"] == "pdph-persistent"
    assert card["extension"]["pdph-imaging.hours-since-puncture"] == 96.0


def test_evaluate_as_of_a_given_instant() -> None:
    result = runner.invoke(cli, ["evaluate", str(SEED), "--now", "2030-02-01T08:00:00+01:00"])
    assert result.exit_code == 0, result.output
    [card] = json.loads(result.stdout)["cards"]
    assert card["extension"]["pdph-imaging.hours-since-puncture"] == 96.0


def test_evaluate_needs_a_zone_in_now() -> None:
    result = runner.invoke(cli, ["evaluate", str(SEED), "--now", "2030-02-01T08:00:00"])
    assert result.exit_code == 2
    assert "time zone" in result.output


def test_evaluate_refuses_a_now_that_is_not_a_date() -> None:
    result = runner.invoke(cli, ["evaluate", str(SEED), "--now", "next tuesday"])
    assert result.exit_code == 2
    assert "ISO 8601" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_evaluate_a_plain_request_picks_the_service_by_hook(tmp_path: Path) -> None:
    fixture = load_fixture(FIXTURES_DIR / "multiple-orders-persistent-order-sign.json", NOW)
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(fixture["request"]), encoding="utf-8")
    result = runner.invoke(cli, ["evaluate", str(request_file), "--now", NOW.isoformat()])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["cards"]) == 2


def test_evaluate_pretty_prints_a_table() -> None:
    result = runner.invoke(cli, ["evaluate", str(SEED), "--pretty"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Cards: 1"
    assert lines[1].split() == [
        "#",
        "indicator",
        "scenario",
        "rating",
        "hours",
        "draft",
        "order",
        "suggestions",
    ]
    row = lines[3]
    for cell in ("warning", "pdph-persistent", "usually-not-appropriate", "96", "sr-mri-brain"):
        assert cell in row
    assert (
        "Replace MRI brain without and with contrast with digital subtraction myelography (DSM) of the complete spine"
        in row
    )
    assert "System actions: 1" in result.stdout
    assert "update ServiceRequest/sr-mri-brain: PAMA rating not-appropriate" in result.stdout


def test_evaluate_pretty_of_a_silent_fixture() -> None:
    result = runner.invoke(
        cli, ["evaluate", str(FIXTURES_DIR / "child-is-silent.json"), "--pretty"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "Cards: 0"
    assert "System actions: 1" in result.stdout
    assert "update ServiceRequest/sr-mri-brain: PAMA rating no-criteria-apply" in result.stdout


def test_discovery_lists_both_services() -> None:
    result = runner.invoke(cli, ["discovery"])
    assert result.exit_code == 0, result.output
    services = json.loads(result.stdout)["services"]
    assert {s["id"]: s["hook"] for s in services} == {
        "pdph-imaging-order-select": "order-select",
        "pdph-imaging-order-sign": "order-sign",
    }


def test_committed_fixtures_readme_is_up_to_date(settings: Settings) -> None:
    expected = asyncio.run(fixtures_readme(FIXTURES_DIR, settings))
    committed = (FIXTURES_DIR / "README.md").read_text(encoding="utf-8")
    assert committed == expected, "run: cds-service fixtures-table --write"


def test_fixtures_table_lists_every_fixture_for_a_clinician() -> None:
    result = runner.invoke(cli, ["fixtures-table", str(FIXTURES_DIR)])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("| **")]
    assert len(rows) == len(list(FIXTURES_DIR.glob("*.json")))
    seed = next(r for r in rows if "seed-persistent-45f-4-days-after-lp.json" in r)
    assert "`pdph-persistent`: warning, usually not appropriate, 96 h after the puncture" in seed
    assert (
        "Replace MRI brain without and with contrast with digital subtraction myelography (DSM) of the complete spine"
        in seed
    )
    silent = next(r for r in rows if "child-is-silent.json" in r)
    assert "| No card |" in silent


def test_fixtures_table_check_and_write(tmp_path: Path) -> None:
    for name in ("child-is-silent.json", "seed-persistent-45f-4-days-after-lp.json"):
        (tmp_path / name).write_bytes((FIXTURES_DIR / name).read_bytes())
    stale = runner.invoke(cli, ["fixtures-table", str(tmp_path), "--check"])
    assert stale.exit_code == 1
    written = runner.invoke(cli, ["fixtures-table", str(tmp_path), "--write"])
    assert written.exit_code == 0, written.output
    fresh = runner.invoke(cli, ["fixtures-table", str(tmp_path), "--check"])
    assert fresh.exit_code == 0, fresh.output


def test_fixtures_table_refuses_to_document_a_wrong_fixture(tmp_path: Path) -> None:
    fixture = json.loads(SEED.read_text(encoding="utf-8"))
    fixture["expected"]["cards"][0]["rating"] = "usually-appropriate"
    (tmp_path / "wrong.json").write_text(json.dumps(fixture), encoding="utf-8")
    result = runner.invoke(cli, ["fixtures-table", str(tmp_path), "--write"])
    assert result.exit_code == 2
    assert "wrong.json" in result.output
    assert not (tmp_path / "README.md").exists()


def test_render_prints_a_ready_request_and_the_api_refuses_an_unrendered_one(
    tmp_path: Path,
) -> None:
    import httpx

    from cds_service.api.app import create_app
    from cds_service.config import Settings

    fixture = FIXTURES_DIR / "seed-acute-34f-after-ms-workup-lp.json"
    result = runner.invoke(cli, ["render", str(fixture), "--now", "2026-11-24T15:30:00Z"])
    assert result.exit_code == 0, result.output
    rendered = json.loads(result.stdout)
    assert "{{" not in result.stdout and rendered["hook"] == "order-select"
    raw = json.loads(fixture.read_text())["request"]
    app = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 's.sqlite3'}", auth_required=False)
    )
    import asyncio

    async def post(body: object) -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return await c.post("/cds-services/pdph-imaging-order-select", json=body)

    refused = asyncio.run(post(raw))
    assert refused.status_code == 400
    assert refused.json()["error"] == "unrendered-template"
    assert "cds-service render" in refused.json()["message"]
    assert asyncio.run(post(rendered)).status_code == 200


def test_migrate_says_what_it_did(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cds_service.config import get_settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'm.sqlite3'}")
    get_settings.cache_clear()
    try:
        first = runner.invoke(cli, ["migrate"])
        second = runner.invoke(cli, ["migrate"])
    finally:
        get_settings.cache_clear()
    assert first.exit_code == 0 and "created the store schema on an empty database" in first.stdout
    assert second.exit_code == 0 and "already current" in second.stdout


def test_evaluate_errors_are_one_line(tmp_path: Path) -> None:
    for content in ("not json", '{"hook": 5}'):
        bad = tmp_path / "bad.json"
        bad.write_text(content)
        result = runner.invoke(cli, ["evaluate", str(bad)])
        assert result.exit_code == 2
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert "Traceback" not in result.output


# Every error of the command line is one line on stderr naming the cause, nothing on stdout, and a
# non-zero exit: no usage box, no traceback; where the user chose among names, the valid ones.


def error_line(args: list[str], code: int = 2) -> str:
    result = runner.invoke(cli, args)
    assert result.exit_code == code, result.output
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "Usage:" not in result.stderr
    assert "╭" not in result.stderr  # click's usage box
    return lines[0]


def test_error_missing_file() -> None:
    line = error_line(["evaluate", "no-such-request.json"])
    assert line == "cds-service: no-such-request.json: no such file"


def test_error_a_folder_where_a_file_is_wanted() -> None:
    line = error_line(["evaluate", str(FIXTURES_DIR)])
    assert f"{FIXTURES_DIR}: is a folder, not a file" in line
    assert "replay takes a folder" in line


def test_error_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("\n")
    for command in ("evaluate", "render", "replay"):
        assert error_line([command, str(empty)]) == f"cds-service: {empty}: the file is empty"


def test_error_not_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"hook": "order-select",')
    assert f"{bad}: not JSON (" in error_line(["render", str(bad)])


def test_error_not_a_text_file(tmp_path: Path) -> None:
    binary = tmp_path / "image.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert "not a text file" in error_line(["evaluate", str(binary)])


def test_error_now_that_is_not_an_instant() -> None:
    line = error_line(["evaluate", str(SEED), "--now", "yesterday"])
    assert line == (
        "cds-service: --now 'yesterday' is not an ISO 8601 instant (e.g. 2026-11-24T12:00:00Z)"
    )


def test_error_now_without_a_zone() -> None:
    line = error_line(["render", str(SEED), "--now", "2030-02-01T08:00:00"])
    assert "needs a time zone offset" in line


def test_error_analytics_since_that_is_not_an_instant() -> None:
    assert "--since 'last week' is not an ISO 8601 instant" in error_line(
        ["analytics", "--since", "last week"]
    )


def test_error_unknown_service_lists_the_services() -> None:
    line = error_line(["evaluate", str(SEED), "--service", "pdph-imaging-order-sing"])
    assert line == (
        "cds-service: no service 'pdph-imaging-order-sing'; the services are: "
        "pdph-imaging-order-select, pdph-imaging-order-sign"
    )


def test_error_unknown_hook_lists_the_hooks(tmp_path: Path) -> None:
    request = json.loads(SEED.read_text(encoding="utf-8"))["request"]
    request["hook"] = "order-selct"
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(request), encoding="utf-8")
    line = error_line(["evaluate", str(request_file)])
    assert line == (
        "cds-service: no service for the hook 'order-selct'; the hooks are: "
        "order-select (pdph-imaging-order-select), order-sign (pdph-imaging-order-sign)"
    )


def test_error_service_that_answers_another_hook() -> None:
    line = error_line(["evaluate", str(SEED), "--service", "pdph-imaging-order-sign"])
    assert "answers the 'order-sign' hook, not the request's 'order-select'" in line


def test_error_missing_argument() -> None:
    line = error_line(["evaluate"])
    assert line.startswith("cds-service evaluate: Missing argument")
    assert line.endswith("(see cds-service evaluate --help)")


def test_error_unknown_option() -> None:
    line = error_line(["evaluate", str(SEED), "--prety"])
    assert line.startswith("cds-service evaluate: No such option: --prety")


def test_error_unknown_command_lists_the_commands() -> None:
    line = error_line(["evalute", str(SEED)])
    assert "No such command 'evalute' (did you mean 'evaluate'?); the commands are: serve," in line
    assert "knowledge" in line


def test_error_replay_of_a_missing_path() -> None:
    assert error_line(["replay", "no-such-folder"]) == (
        "cds-service: no-such-folder: no such file or folder"
    )


def test_error_replay_of_a_file_that_is_not_a_fixture(tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(json.loads(SEED.read_text())["request"]), encoding="utf-8")
    line = error_line(["replay", str(SEED), str(request), "--expect"])
    assert line == f"cds-service: {request}: not a fixture: 'request' is missing or not an object"


def test_error_replay_of_a_fixture_naming_an_unknown_service(tmp_path: Path) -> None:
    fixture = json.loads(SEED.read_text(encoding="utf-8"))
    fixture["service"] = "pdph-imaging"
    wrong = tmp_path / "wrong-service.json"
    wrong.write_text(json.dumps(fixture), encoding="utf-8")
    line = error_line(["replay", str(wrong), "--expect"])
    assert "no service 'pdph-imaging' here; the services are: pdph-imaging-order-select" in line


@pytest.mark.slow  # a real server
def test_error_replay_at_a_server_that_is_down(settings: Settings) -> None:
    from cds_service.api.app import create_app
    from tests.demo_helpers import running_server

    with running_server(create_app(settings)) as base_url:
        pass  # the port is free again once the server has stopped
    line = error_line(["replay", str(FIXTURES_DIR), "--expect", "--url", base_url])
    assert line == (
        f"cds-service: cannot reach the service at {base_url}/cds-services: the connection"
        " failed (is it running? `make run` starts it)"
    )


@pytest.mark.slow  # a real server
def test_error_replay_at_a_service_that_requires_jwts(settings: Settings) -> None:
    from cds_service.api.app import create_app
    from tests.demo_helpers import running_server

    with running_server(create_app(settings.model_copy(update={"auth_required": True}))) as url:
        line = error_line(["replay", str(SEED), "--url", url])
    assert f"{url}/cds-services answered 401: it requires a signed CDS Hooks JWT" in line


def test_error_knowledge_check_of_a_missing_folder() -> None:
    line = error_line(["knowledge", "check", "no-such-hooks"], code=1)
    assert line == "cds-service: no-such-hooks: no such folder"


def test_error_fixtures_table_of_a_file() -> None:
    assert error_line(["fixtures-table", str(SEED)]).endswith(": is a file, not a folder")
