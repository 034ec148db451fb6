"""Against a real FHIR server: Medplum's FHIR engine (tests/fhir_server, pinned by its lock file and
installed by `make test` with `npm ci`) on loopback, instead of mocks.

- The demo patients, loaded with the repository's own loader (docker/load_fhir_server.py), give their
  documented cards through hook calls that carry no prefetch.
- Every scenario fixture, its prefetch resources stored on the server, gives the same answer without
  prefetch as with it.
- A partial prefetch makes the service fetch exactly the missing keys, nothing else.
- The EHR's access token arrives as `Authorization: Bearer` on every query.

Respx stays the tool for fault injection (tests/test_fhir_faults.py): a real server does not time out
or answer garbage on demand. Without Node.js or the installed packages these tests skip and say why."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from cds_tools.fixtures import fixture_paths, load_fixture
from tests.ops_helpers import SELECT, scenario_of, service_of, settings_for
from tests.support.client import app_client
from tests.support.processes import stop

pytestmark = pytest.mark.fhirserver

ROOT = Path(__file__).resolve().parent.parent
SERVER_DIR = ROOT / "tests" / "fhir_server"
DEMO = ROOT / "fixtures" / "fhir-server"
NOW = datetime.now(UTC).replace(microsecond=0)
TOKEN = "ehr-access-token-7f3a"


@dataclass
class FhirServer:
    base: str  # the FHIR base URL
    origin: str
    client: httpx.Client

    def reset(self) -> None:
        self.client.delete(f"{self.origin}/__data").raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self.client.get(f"{self.origin}/__requests").json()
        return answer

    def clear_log(self) -> None:
        self.client.delete(f"{self.origin}/__requests").raise_for_status()

    def store(self, resources: list[dict[str, Any]]) -> None:
        """PUT every resource with its id, in one transaction."""
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": r,
                    "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                }
                for r in resources
            ],
        }
        answer = self.client.post(
            self.base, json=bundle, headers={"Content-Type": "application/fhir+json"}
        )
        assert answer.status_code == 200, answer.text[:500]


@pytest.fixture(scope="module")
def fhir_server() -> Iterator[FhirServer]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the real FHIR server tests need Node 20.19 or later")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    major, minor = (int(part) for part in version.lstrip("v").split(".")[:2])
    if (major, minor) < (20, 19):
        pytest.skip(f"Node.js {version} is too old for Medplum 4.5 (tests/fhir_server): 20.19+")
    if not (SERVER_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir():
        pytest.skip(
            "the Medplum packages are not installed: `make test` installs them with "
            "`npm ci --prefix tests/fhir_server` from the committed lock file"
        )
    process = subprocess.Popen(
        [node, "server.mjs", "0"],
        cwd=SERVER_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # `LISTENING <port>` once ready (about a second)
        if not line.startswith("LISTENING "):
            raise RuntimeError(f"the FHIR server did not start: {line}{process.stdout.read()}")
        origin = f"http://127.0.0.1:{int(line.split()[1])}"
        with httpx.Client(timeout=30.0) as client:
            yield FhirServer(base=f"{origin}/fhir/R4", origin=origin, client=client)
    finally:
        stop(process)


def _loader() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "load_fhir_server", ROOT / "docker" / "load_fhir_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _comparable(response: dict[str, Any]) -> str:
    """The response as sorted JSON without what differs from call to call: card and suggestion
    uuids and `urn:uuid:` identifiers."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "uuid"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        if isinstance(value, str) and value.startswith("urn:uuid:"):
            return "urn:uuid:*"
        return value

    return json.dumps(strip(response), indent=1, sort_keys=True)


def _prefetch_resources(prefetch: dict[str, Any]) -> list[dict[str, Any]]:
    """Every resource of a prefetch (Bundles unpacked), each with an id (the server keys on it)."""
    found: list[dict[str, Any]] = []
    for key, value in prefetch.items():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            items = [e.get("resource") for e in value.get("entry", []) if isinstance(e, dict)]
        else:
            items = [value]
        for n, resource in enumerate(r for r in items if isinstance(r, dict)):
            if resource.get("resourceType") == "OperationOutcome":
                continue
            found.append({"id": f"{key}-{n}", **resource})
    return found


def _without_prefetch(request: dict[str, Any], server: FhirServer) -> dict[str, Any]:
    bare = {k: v for k, v in copy.deepcopy(request).items() if k != "prefetch"}
    bare["fhirServer"] = server.base
    bare["fhirAuthorization"] = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "pdph-imaging-cds",
    }
    return bare


def _queries(log: list[dict[str, Any]]) -> list[str]:
    """Each logged request as `Type?param=value...` (the query decoded), for readable asserts."""
    out = []
    for entry in log:
        url = urlsplit(entry["path"])
        path = url.path.removeprefix("/fhir/R4/")
        params = "&".join(f"{k}={v}" for k, vs in parse_qs(url.query).items() for v in vs)
        out.append(f"{path}?{params}" if params else path)
    return out


@pytest.mark.anyio
async def test_the_demo_patients_loaded_by_the_repo_loader_give_their_cards(
    fhir_server: FhirServer, tmp_path: Path
) -> None:
    fhir_server.reset()
    loader = _loader()
    lines = loader.load(fhir_server.client, fhir_server.base, DEMO, NOW)
    assert len(lines) == 3 and all("resources loaded" in line for line in lines)
    expected = {
        "hook-request-acute.json": "pdph-acute",
        "hook-request-fever.json": "pdph-acute-red-flags",
        "hook-request-persistent.json": "pdph-persistent",
    }
    async with app_client(
        settings_for(f"sqlite:///{tmp_path}/s.sqlite3"), clock=lambda: NOW
    ) as app:
        for name, scenario in expected.items():
            request = json.loads((DEMO / name).read_text())
            request["fhirServer"] = fhir_server.base
            fhir_server.clear_log()
            answer = await app.post(f"/cds-services/{service_of(request)}", json=request)
            assert answer.status_code == 200, answer.text
            assert [scenario_of(c) for c in answer.json()["cards"]] == [scenario], name
            patient = request["context"]["patientId"]
            assert f"Patient/{patient}" in _queries(fhir_server.requests())


FIXTURES = fixture_paths()


@pytest.mark.anyio
@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
async def test_a_fixture_answers_the_same_without_prefetch_from_the_server(
    fhir_server: FhirServer, path: Path, tmp_path: Path
) -> None:
    fixture = load_fixture(path, NOW)
    request = fixture["request"]
    fhir_server.reset()
    fhir_server.store(_prefetch_resources(request.get("prefetch", {})))
    async with app_client(
        settings_for(f"sqlite:///{tmp_path}/s.sqlite3"), clock=lambda: NOW
    ) as app:
        service = f"/cds-services/{service_of(request)}"
        with_prefetch = await app.post(service, json=request)
        fhir_server.clear_log()
        without = await app.post(service, json=_without_prefetch(request, fhir_server))
    assert with_prefetch.status_code == without.status_code == 200, without.text
    assert _comparable(without.json()) == _comparable(with_prefetch.json())
    log = fhir_server.requests()
    # An order the service does not evaluate (a blood count) needs no patient data: no query at all.
    evaluated = bool(fixture["expected"]["cards"] or fixture["expected"]["systemActions"])
    assert bool(log) == evaluated, _queries(log)
    assert all(entry["authorization"] == f"Bearer {TOKEN}" for entry in log)
    assert all(entry["method"] == "GET" for entry in log)


@pytest.mark.anyio
async def test_a_partial_prefetch_fetches_only_the_missing_keys(
    fhir_server: FhirServer, tmp_path: Path
) -> None:
    path = next(p for p in FIXTURES if p.name.startswith("seed-persistent"))
    request = load_fixture(path, NOW)["request"]
    fhir_server.reset()
    fhir_server.store(_prefetch_resources(request["prefetch"]))
    partial = _without_prefetch(request, fhir_server)
    missing = {"conditions", "imagingStudies"}
    partial["prefetch"] = {k: v for k, v in request["prefetch"].items() if k not in missing}
    patient = request["context"]["patientId"]
    async with app_client(
        settings_for(f"sqlite:///{tmp_path}/s.sqlite3"), clock=lambda: NOW
    ) as app:
        full = await app.post(f"/cds-services/{SELECT}", json=request)
        fhir_server.clear_log()
        answer = await app.post(f"/cds-services/{SELECT}", json=partial)
    assert answer.status_code == 200, answer.text
    assert _comparable(answer.json()) == _comparable(full.json())
    assert [scenario_of(c) for c in answer.json()["cards"]] == ["pdph-persistent"]
    assert sorted(_queries(fhir_server.requests())) == [
        f"Condition?patient={patient}",
        f"ImagingStudy?patient={patient}",
    ]
