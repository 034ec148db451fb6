"""Shared helpers of the operations tests (store, audit, analytics, metrics, PostgreSQL): fixture-like
hook requests built in code, feedback items, an app client over ASGI, and a throwaway PostgreSQL
schema."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, text

from cds_service.config import Settings
from cds_service.persistence.store import AuditRecord
from tests.support.clock import NOW
from tests.support.database import migrated_sqlite
from tests.support.settings import read_settings

SELECT = "pdph-imaging-order-select"
SIGN = "pdph-imaging-order-sign"
OVERRIDE_SYSTEM = "urn:pdph-imaging:override-reason"

POSTGRES_URL = os.environ.get(
    "CDS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

CT_HEAD = ("70450", "CT head without contrast")
MRI_BRAIN = ("70553", "MRI brain without and with contrast")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def hook_request(
    hook_instance: str,
    *,
    hours_since_puncture: float = 36,
    temperature_c: float | None = None,
    study: tuple[str, str] = CT_HEAD,
    hook: str = "order-select",
    patient: str = "pat-ops",
    now: datetime = NOW,
) -> dict[str, Any]:
    """A 45-year-old with a headache after a diagnostic lumbar puncture `hours_since_puncture` ago,
    optionally a body temperature, and one draft imaging order."""
    subject = {"reference": f"Patient/{patient}"}
    order = {
        "resourceType": "ServiceRequest",
        "id": "sr-1",
        "status": "draft",
        "intent": "order",
        "subject": subject,
        "code": {
            "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": study[0]}],
            "text": study[1],
        },
    }
    observations: list[dict[str, Any]] = []
    if temperature_c is not None:
        observations.append(
            {
                "resourceType": "Observation",
                "id": "temp-1",
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": "vital-signs",
                            }
                        ]
                    }
                ],
                "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
                "subject": subject,
                "effectiveDateTime": _iso(now - timedelta(hours=2)),
                "valueQuantity": {
                    "value": temperature_c,
                    "unit": "°C",
                    "system": "http://unitsofmeasure.org",
                    "code": "Cel",
                },
            }
        )
    context: dict[str, Any] = {
        "userId": "Practitioner/example",
        "patientId": patient,
        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": order}]},
    }
    if hook == "order-select":
        context["selections"] = ["ServiceRequest/sr-1"]
    return {
        "hook": hook,
        "hookInstance": hook_instance,
        "context": context,
        "prefetch": {
            "patient": {
                "resourceType": "Patient",
                "id": patient,
                "birthDate": f"{now.year - 45}-01-01",
            },
            "procedures": _bundle(
                {
                    "resourceType": "Procedure",
                    "id": "lp-1",
                    "status": "completed",
                    "subject": subject,
                    "code": {
                        "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62270"}],
                        "text": "Lumbar puncture, diagnostic",
                    },
                    "performedDateTime": _iso(now - timedelta(hours=hours_since_puncture)),
                }
            ),
            "conditions": _bundle(
                {
                    "resourceType": "Condition",
                    "id": "pdph-1",
                    "subject": subject,
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "verificationStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                "code": "confirmed",
                            }
                        ]
                    },
                    "code": {
                        "coding": [
                            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G97.1"}
                        ],
                        "text": "Post-dural puncture headache",
                    },
                    "onsetDateTime": _iso(now - timedelta(hours=min(hours_since_puncture, 20))),
                }
            ),
            "observations": _bundle(*observations),
        },
    }


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def feedback_item(
    card: str,
    outcome: str = "overridden",
    *,
    reason: str | None = None,
    display: str | None = None,
    at: datetime = NOW,
    accepted: list[str] | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {"card": card, "outcome": outcome, "outcomeTimestamp": _iso(at)}
    if reason is not None:
        item["overrideReason"] = {
            "reason": {"system": OVERRIDE_SYSTEM, "code": reason, "display": display or reason}
        }
    if accepted:
        item["acceptedSuggestions"] = [{"id": s} for s in accepted]
    return item


def audit_record(hook_instance: str, *cards: str, scenario: str = "pdph-acute") -> AuditRecord:
    """One evaluated draft order's audit row, with these card uuids shown for it."""
    return AuditRecord(
        hook_instance=hook_instance,
        service_id=SELECT,
        scenario=scenario,
        rating="usually-not-appropriate",
        study_type="ct-head",
        hours_since_puncture=36.0,
        latency_ms=3.5,
        evaluated_at=NOW,
        cards=tuple((c, "warning") for c in cards),
    )


def metric(name: str, **labels: str) -> float:
    """The current value of one sample of the process's metrics (0 before its first use)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def settings_for(database_url: str, **overrides: Any) -> Settings:
    """Operations tests run with auth off unless they say otherwise (auth has its own tests). A new
    SQLite file starts as a copy of the migrated schema, unless the test chooses the migration."""
    path = Path(database_url.removeprefix("sqlite:///"))
    fresh = database_url.startswith("sqlite:///") and not path.exists()
    if fresh and "migrate_on_startup" not in overrides:
        database_url = migrated_sqlite(path)
        overrides["migrate_on_startup"] = False
    return read_settings(database_url, **({"auth_required": False} | overrides))


def service_of(request: dict[str, Any]) -> str:
    """The id of the service that answers this request's hook."""
    return SELECT if request["hook"] == "order-select" else SIGN


async def call_hook(client: httpx.AsyncClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.post(f"/cds-services/{service_of(request)}", json=request)
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


async def ward_day(client: httpx.AsyncClient) -> None:
    """Six hook calls (three acute, one with fever, two persistent) and the clinicians' answers."""
    acute = [(await call_hook(client, hook_request(f"acute-{i}")))[0]["uuid"] for i in range(3)]
    fever = (await call_hook(client, hook_request("fever", temperature_c=38.6)))[0]["uuid"]
    late = [
        (
            await call_hook(
                client, hook_request(f"late-{i}", hours_since_puncture=96, study=MRI_BRAIN)
            )
        )[0]["uuid"]
        for i in range(2)
    ]
    severe = {"reason": "severe-refractory", "display": "Severe or refractory headache"}
    answers = [
        feedback_item(acute[0], **severe),
        feedback_item(acute[1], **severe),
        feedback_item(acute[1], **severe),  # the EHR retried
        feedback_item(acute[2], "accepted", accepted=["s-1"]),
        feedback_item(acute[2], at=NOW - timedelta(days=40), reason="specialist-request"),  # old
        feedback_item(fever, "accepted", accepted=["s-2"]),
        feedback_item(late[0], reason="dsm-unavailable", display="DSM not available here"),
        feedback_item(late[1]),  # overridden without a reason
        # Stored but flagged (a card this service never issued): kept out of the analytics.
        feedback_item("card-from-elsewhere", reason="local-protocol", display="Local protocol"),
    ]
    response = await client.post(f"/cds-services/{SELECT}/feedback", json={"feedback": answers})
    assert response.status_code == 200 and response.json()["stored"] == 8


def scenario_of(card: dict[str, Any]) -> str:
    return str(card["source"]["topic"]["code"])


# -- PostgreSQL ------------------------------------------------------------------------------------


def postgres_available() -> str | None:
    """None when the test server answers, else why not."""
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A database URL whose tables all live in a fresh schema, dropped afterwards; skips the test
    when no PostgreSQL server answers at CDS_TEST_POSTGRES_URL."""
    problem = postgres_available()
    if problem is not None:
        pytest.skip(f"no PostgreSQL server answers at {POSTGRES_URL} ({problem})")
    schema = f"cds_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
