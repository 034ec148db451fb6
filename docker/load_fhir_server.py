"""Load the demo patients into the compose file's FHIR server: wait until it answers
`GET [base]/metadata`, then POST every transaction Bundle found in a folder.

Times in the bundles are written relative to the moment of loading (`{{now-36h}}`), so a patient's
lumbar puncture is always as recent as its scenario needs. Resources are PUT with fixed ids: loading
twice updates them instead of duplicating them.

    python docker/load_fhir_server.py http://fhir:8080/fhir fixtures/fhir-server
"""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

RELATIVE_TIME = re.compile(r"\{\{now-(\d+(?:\.\d+)?)h\}\}")
FHIR_JSON = "application/fhir+json"


def with_times(text: str, now: datetime) -> str:
    """Replace each `{{now-Nh}}` by the ISO instant N hours before `now`."""

    def instant(match: re.Match[str]) -> str:
        moment = now - timedelta(hours=float(match.group(1)))
        return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    return RELATIVE_TIME.sub(instant, text)


def transaction_bundles(folder: Path, now: datetime) -> dict[str, dict[str, Any]]:
    bundles = {}
    for path in sorted(folder.glob("*.json")):
        body = json.loads(with_times(path.read_text(encoding="utf-8"), now))
        if body.get("resourceType") == "Bundle" and body.get("type") == "transaction":
            bundles[path.name] = body
    return bundles


def wait_for(client: httpx.Client, base: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if client.get(f"{base}/metadata", headers={"Accept": FHIR_JSON}).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"FHIR server at {base} not ready after {timeout_s:.0f} s")
        time.sleep(3)


def load(client: httpx.Client, base: str, folder: Path, now: datetime) -> list[str]:
    """POST each transaction Bundle; one summary line per bundle."""
    lines = []
    for name, bundle in transaction_bundles(folder, now).items():
        response = client.post(
            base, content=json.dumps(bundle), headers={"Content-Type": FHIR_JSON}
        )
        if response.status_code != 200:
            raise SystemExit(f"{name}: HTTP {response.status_code}: {response.text[:500]}")
        statuses = [e["response"]["status"] for e in response.json().get("entry", [])]
        lines.append(f"{name}: {len(statuses)} resources loaded ({', '.join(statuses)})")
    return lines


def main(base: str, folder: str, timeout_s: float = 300) -> None:
    base = base.rstrip("/")
    with httpx.Client(timeout=60) as client:
        wait_for(client, base, timeout_s)
        for line in load(client, base, Path(folder), datetime.now(UTC)):
            print(line, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
