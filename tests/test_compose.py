"""docker-compose.yml, Dockerfile and the FHIR server's demo data, checked without a Docker engine:
the services, ports, environment and healthchecks agree with each other and with the settings the
app reads, and the demo patients, served by a stand-in FHIR server, give the expected cards to hook
requests that carry no prefetch."""

from __future__ import annotations

import importlib.util
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from sqlalchemy.engine import make_url

from cds_service.api.deps import runtime_of
from cds_service.config import Settings
from tests.ops_helpers import SELECT, scenario_of, settings_for
from tests.support.client import app_client

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "fixtures" / "fhir-server"
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _loader() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "load_fhir_server", ROOT / "docker/load_fhir_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _container_port(service: str) -> int:
    (mapping,) = SERVICES[service]["ports"]
    return int(str(mapping).rsplit(":", 1)[1])


def test_the_stack_has_its_four_services() -> None:
    assert set(SERVICES) == {"cds", "db", "fhir", "fhir-loader"}
    assert SERVICES["cds"]["build"] == "." and (ROOT / "Dockerfile").is_file()
    assert SERVICES["fhir"]["image"].startswith("hapiproject/hapi:")
    assert SERVICES["db"]["image"].startswith("postgres:")


def test_service_environment_is_what_the_app_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: str(v) for k, v in SERVICES["cds"]["environment"].items()}
    fields = set(Settings.model_fields)
    for key in env:
        if key.startswith("CDS_"):
            assert key.removeprefix("CDS_").lower() in fields, f"{key} is no setting"
    assert {"DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY", "PORT"} <= set(env)
    assert int(env["WEB_CONCURRENCY"]) > 1
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == env["DATABASE_URL"]
    assert settings.migrate_on_startup is True


def test_database_url_points_at_the_postgres_service() -> None:
    url = make_url(SERVICES["cds"]["environment"]["DATABASE_URL"])
    db = SERVICES["db"]["environment"]
    assert url.drivername == "postgresql+psycopg"
    assert (url.host, url.port or 5432) == ("db", 5432)
    assert (url.database, url.username, url.password) == (
        db["POSTGRES_DB"],
        db["POSTGRES_USER"],
        db["POSTGRES_PASSWORD"],
    )
    (volume,) = SERVICES["db"]["volumes"]
    name, target = volume.split(":")
    assert target == "/var/lib/postgresql/data" and name in COMPOSE["volumes"]
    assert "pg_isready" in " ".join(SERVICES["db"]["healthcheck"]["test"])
    assert f"-U {db['POSTGRES_USER']}" in SERVICES["db"]["healthcheck"]["test"][1]


def test_ports_and_healthchecks_agree() -> None:
    cds = SERVICES["cds"]
    port = _container_port("cds")
    assert port == int(cds["environment"]["PORT"])
    assert f"EXPOSE {port}" in DOCKERFILE
    probe = " ".join(cds["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/readyz" in probe
    assert f"127.0.0.1:{port}/readyz" in DOCKERFILE  # the image's own HEALTHCHECK
    assert cds["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "fhir-loader": {"condition": "service_completed_successfully"},
    }
    assert SERVICES["fhir-loader"]["depends_on"] == {"fhir": {"condition": "service_started"}}
    # HAPI's distroless image cannot run a healthcheck command: the loader waits for it instead.
    assert "healthcheck" not in SERVICES["fhir"]


def test_image_runs_several_workers_with_multiprocess_metrics() -> None:
    start = (ROOT / "docker/start.sh").read_text()
    assert 'CMD ["/app/docker/start.sh"]' in DOCKERFILE
    assert os.access(ROOT / "docker/start.sh", os.X_OK)
    assert "cds_service.asgi:app" in start and "--no-access-log" in start
    assert '--workers "${WEB_CONCURRENCY' in start
    assert 'rm -rf "$PROMETHEUS_MULTIPROC_DIR"' in start
    assert "COPY fixtures ./fixtures" in DOCKERFILE and "CDS_HOOKS_DIR=/app/hooks" in DOCKERFILE


def _loader_base_url() -> str:
    command = SERVICES["fhir-loader"]["command"]
    assert command[1] == "/app/docker/load_fhir_server.py"
    assert command[3] == "/app/fixtures/fhir-server"
    return str(command[2])


def test_loader_targets_the_fhir_service_and_hook_requests_name_it() -> None:
    base = urlsplit(_loader_base_url())
    assert base.hostname == "fhir" and base.port == _container_port("fhir")
    assert base.path == "/fhir"
    requests = sorted(DEMO.glob("hook-request-*.json"))
    assert len(requests) == 3
    for path in requests:
        request = json.loads(path.read_text())
        assert request["fhirServer"] == _loader_base_url()
        assert "prefetch" not in request


def test_demo_bundles_are_transactions_with_a_recent_puncture_pdph_and_temperature() -> None:
    bundles = _loader().transaction_bundles(DEMO, datetime(2026, 11, 24, tzinfo=UTC))
    assert len(bundles) == 3
    for bundle in bundles.values():
        types = []
        for entry in bundle["entry"]:
            resource = entry["resource"]
            assert entry["request"] == {
                "method": "PUT",
                "url": f"{resource['resourceType']}/{resource['id']}",
            }
            types.append(resource["resourceType"])
        assert sorted(types) == ["Condition", "Observation", "Patient", "Procedure"]
        assert "{{" not in json.dumps(bundle)
    acute = bundles["demo-pdph-acute.json"]["entry"]
    assert acute[1]["resource"]["performedDateTime"] == "2026-11-22T12:00:00Z"
    assert acute[2]["resource"]["code"]["coding"][0]["code"] == "G97.1"
    assert acute[3]["resource"]["code"]["coding"][0]["code"] == "8310-5"


def test_loader_waits_for_the_server_then_posts_each_bundle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    posted: list[dict[str, Any]] = []
    metadata_calls = []

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/fhir/metadata":
            metadata_calls.append(1)
            return httpx.Response(503 if len(metadata_calls) == 1 else 200, json={})
        assert request.method == "POST" and request.url.path == "/fhir"
        assert request.headers["content-type"] == "application/fhir+json"
        bundle = json.loads(request.content)
        posted.append(bundle)
        entries = [{"response": {"status": "201 Created"}} for _ in bundle["entry"]]
        return httpx.Response(200, json={"resourceType": "Bundle", "entry": entries})

    loader = _loader()
    monkeypatch.setattr(loader.time, "sleep", lambda _: None)
    with httpx.Client(transport=httpx.MockTransport(server)) as client:
        loader.wait_for(client, "http://fhir:8080/fhir", 30)
        lines = loader.load(client, "http://fhir:8080/fhir", DEMO, datetime.now(UTC))
    assert len(metadata_calls) == 2
    assert len(posted) == len(lines) == 3
    assert (
        lines[0]
        == "demo-pdph-acute.json: 4 resources loaded (" + ", ".join(["201 Created"] * 4) + ")"
    )


def _demo_fhir_server(now: datetime) -> httpx.MockTransport:
    """A stand-in for the loaded HAPI server: reads by id and searches by patient."""
    resources = [
        entry["resource"]
        for bundle in _loader().transaction_bundles(DEMO, now).values()
        for entry in bundle["entry"]
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/fhir/")
        if "/" in path:
            found = [r for r in resources if f"{r['resourceType']}/{r['id']}" == path]
            body: dict[str, Any] = found[0] if found else {"resourceType": "OperationOutcome"}
            return httpx.Response(200 if found else 404, json=body)
        patient = f"Patient/{request.url.params['patient']}"
        matches = [
            r
            for r in resources
            if r["resourceType"] == path and r.get("subject", {}).get("reference") == patient
        ]
        bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(matches)}
        bundle["entry"] = [{"resource": r} for r in matches]
        return httpx.Response(200, json=bundle)

    return httpx.MockTransport(answer)


@pytest.mark.anyio
async def test_hook_requests_without_prefetch_work_against_the_demo_data(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    expected = {
        "hook-request-acute.json": "pdph-acute",
        "hook-request-fever.json": "pdph-acute-red-flags",
        "hook-request-persistent.json": "pdph-persistent",
    }
    async with (
        app_client(settings_for(f"sqlite:///{tmp_path}/s.sqlite3"), clock=lambda: now) as client,
        httpx.AsyncClient(transport=_demo_fhir_server(now)) as fhir,
    ):
        runtime_of(client.app).fhir_client = fhir  # type: ignore[attr-defined]
        for name, scenario in expected.items():
            request = json.loads((DEMO / name).read_text())
            response = await client.post(f"/cds-services/{SELECT}", json=request)
            assert response.status_code == 200, response.text
            cards = response.json()["cards"]
            assert [scenario_of(c) for c in cards] == [scenario], name
