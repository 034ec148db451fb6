"""Vocabulary gaps (SPEC §6): imaging-looking draft orders the classifier could not place and words the
fail-safe rule could not interpret, counted in the store by a salted hash of the patient id and shown
only once met for 5 distinct patients; never logged; closed by a YAML edit the entry names."""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cds_service.cli import cli
from cds_service.config import get_settings
from cds_service.knowledge import Knowledge
from cds_service.pipeline.gaps import unclassified_imaging_orders
from tests.go_live_helpers import MovableClock, post_hook
from tests.ops_helpers import NOW, hook_request, metric, settings_for
from tests.support.cli import CliRunner
from tests.support.client import app_client

WORD = "zorblaxine"  # a word no rule accounts for, written in the order's note
CPT = "http://www.ama-assn.org/go/cpt"
LOCAL = "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.1234"  # a proprietary orderable system


def _bundle(*orders: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "entry": [{"resource": o} for o in orders]}


def _order(order_id: str, code: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": order_id,
        "status": "draft",
        "code": code,
        **extra,
    }


IMAGING_CATEGORY = [{"coding": [{"system": "http://snomed.info/sct", "code": "363679005"}]}]


@pytest.mark.parametrize(
    ("code", "extra", "unclassified"),
    [
        ({"text": "XR CHEST 2 VIEWS"}, {}, True),  # imaging, not head or spine: not evaluated
        ({"text": "CT ABD/PELVIS W"}, {}, True),
        ({"text": "PET brain FDG"}, {}, True),
        (
            {"coding": [{"system": LOCAL, "code": "IMG4471", "display": "Neuro protocol 4"}]},
            {"category": IMAGING_CATEGORY},
            True,
        ),  # a local code and an imaging category
        ({"coding": [{"system": "urn:oid:2.16.840.1.113883.6.12", "code": "76499"}]}, {}, True),
        ({"text": "CT head without contrast"}, {}, False),  # classified: evaluated as usual
        ({"coding": [{"system": CPT, "code": "70450"}]}, {}, False),
        ({"text": "Paracetamol 1 g"}, {}, False),  # not imaging at all
        ({"text": "MRSA screen"}, {}, False),
        ({"coding": [{"system": CPT, "code": "85025", "display": "CBC"}]}, {}, False),
    ],
)
def test_what_looks_like_imaging_but_is_not_placed(
    knowledge: Knowledge, code: dict[str, Any], extra: dict[str, Any], unclassified: bool
) -> None:
    found = unclassified_imaging_orders(_bundle(_order("o1", code, **extra)), knowledge)
    assert bool(found) is unclassified


def test_names_codes_and_selections(knowledge: Knowledge) -> None:
    local = {"system": LOCAL, "code": "IMG77", "display": "Protocol 4"}
    drafts = _bundle(
        _order("a", {"text": "XR chest", "coding": [local]}),
        _order("a", {"text": "XR chest"}),  # repeated in the bundle: once
        _order("b", {"text": "CT chest"}),
        {"resourceType": "MedicationRequest", "id": "m", "code": {"text": "CT contrast"}},
        {"resourceType": "ServiceRequest", "code": "not a concept"},
    )
    found = unclassified_imaging_orders(drafts, knowledge)
    assert [(o.reference, o.name, o.codes) for o in found] == [
        ("ServiceRequest/a", "XR chest", ((LOCAL, "IMG77", "Protocol 4"),)),
        ("ServiceRequest/b", "CT chest", ()),
    ]
    selected = unclassified_imaging_orders(drafts, knowledge, ["ServiceRequest/b"])
    assert [o.reference for o in selected] == ["ServiceRequest/b"]


def _with_gaps(instance: str, patient: str, now: datetime = NOW) -> dict[str, Any]:
    """A pdph-acute call whose CT head order carries an uninterpreted word in its note, with a
    second, selected draft order that looks like imaging but no study type fits."""
    request = hook_request(instance, patient=patient, now=now)
    drafts = request["context"]["draftOrders"]["entry"]
    drafts[0]["resource"]["note"] = [{"text": WORD}]
    drafts.append(
        {
            "resource": _order(
                "sr-2",
                {"coding": [{"system": LOCAL, "code": "NEU-P4", "display": "NEURO PROTOCOL 4"}]},
                subject={"reference": f"Patient/{patient}"},
                category=IMAGING_CATEGORY,
            )
        }
    )
    request["context"]["selections"].append("ServiceRequest/sr-2")
    return request


async def _report(client: Any, **params: Any) -> dict[str, Any]:
    response = await client.get("/analytics/vocabulary-gaps", params=params)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


@pytest.mark.anyio
async def test_shown_at_five_patients_never_for_one_patients_ten_calls(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path}/store.sqlite3"
    clock = MovableClock(NOW)
    caplog.set_level(logging.DEBUG)
    words_before = metric("cds_uninterpreted_words_total", service="pdph-imaging-order-select")
    orders_before = metric(
        "cds_unclassified_imaging_orders_total", service="pdph-imaging-order-select"
    )
    async with app_client(settings_for(url), clock=clock) as client:
        for call in range(10):  # one patient, ten calls
            clock.now = NOW + timedelta(minutes=call)
            await post_hook(client, _with_gaps(f"same-{call}", "patient-0"))
        after_one = await _report(client)
        for patient in range(1, 4):  # four patients in all
            clock.now = NOW + timedelta(hours=patient)
            await post_hook(client, _with_gaps(f"p{patient}", f"patient-{patient}"))
        after_four = await _report(client)
        # The replay harness's and the demo's calls are not counted.
        await post_hook(client, _with_gaps("harness", "patient-h1"), traffic="replay")
        await post_hook(client, _with_gaps("demo", "patient-h2"), traffic="demo")
        after_marked = await _report(client)
        clock.now = NOW + timedelta(hours=5)
        await post_hook(client, _with_gaps("p5", "patient-5"))  # the fifth patient
        after_five = await _report(client)
        raised = await _report(client, minPatients=6)
        lowered = await client.get("/analytics/vocabulary-gaps", params={"minPatients": 4})
        as_csv = await client.get("/analytics/vocabulary-gaps", params={"format": "csv"})
    assert after_one["entries"] == [] and after_one["belowThreshold"] == 3
    assert after_four["entries"] == [] and after_marked["entries"] == []
    entries = {e["kind"]: e for e in after_five["entries"]}
    assert set(entries) == {"word", "order-name", "order-code"}
    word = entries["word"]
    assert (word["text"], word["hookCalls"], word["patients"]) == (WORD, 14, 5)
    assert word["firstSeen"] == "2026-11-24T15:30:00Z"
    assert word["lastSeen"] == "2026-11-24T20:30:00Z"
    assert word["exampleScenario"] == "pdph-acute"
    assert word["closeIn"] == "hooks/pdph_imaging/valuesets.yaml"
    assert word["closeWith"].startswith("findings.<finding>.text")
    code = entries["order-code"]
    assert (code["system"], code["code"], code["text"]) == (LOCAL, "NEU-P4", "NEURO PROTOCOL 4")
    assert code["closeIn"] == "hooks/pdph_imaging/imaging.yaml" and code["closeWith"] == "codes"
    assert entries["order-name"]["text"] == "NEURO PROTOCOL 4"
    assert entries["order-name"]["closeWith"].startswith("text")
    assert after_five["minPatients"] == 5 and after_five["retentionDays"] == 90
    assert raised["entries"] == [] and raised["belowThreshold"] == 3
    assert lowered.status_code == 400 and lowered.json()["error"] == "invalid-threshold"
    assert as_csv.text.splitlines()[0].startswith("kind,text,system,code,hook_calls,patients")
    assert len(as_csv.text.splitlines()) == 4
    # Counted in metrics (never by name): 14 calls, one order and one word each.
    assert metric("cds_uninterpreted_words_total", service="pdph-imaging-order-select") == (
        words_before + 14
    )
    assert (
        metric("cds_unclassified_imaging_orders_total", service="pdph-imaging-order-select")
        == orders_before + 14
    )
    # Never in logs; the patient ids never in the store, only their salted hashes.
    assert WORD not in caplog.text and "PROTOCOL 4" not in caplog.text
    stored = Path(tmp_path / "store.sqlite3")
    with sqlite3.connect(stored) as connection:
        dump = "\n".join(connection.iterdump())
        hashes = {
            row[0] for row in connection.execute("SELECT patient_hash FROM vocabulary_gap_sighting")
        }
    assert "patient-0" not in dump and "patient-5" not in dump
    assert len(hashes) == 5 and all(len(h) == 32 for h in hashes)


@pytest.mark.anyio
async def test_the_salt_is_the_setting_and_sightings_expire(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.sqlite3"
    clock = MovableClock(NOW)
    settings = settings_for(url, gap_salt="s3cret-salt", gap_retention_days=30)
    async with app_client(settings, clock=clock) as client:
        for patient in range(5):
            await post_hook(client, _with_gaps(f"old-{patient}", f"patient-{patient}"))
        shown = await _report(client)
        clock.now = NOW + timedelta(days=31)
        # A call 31 days later deletes the sightings older than 30 days.
        await post_hook(client, _with_gaps("new", "patient-9", clock.now))
        expired = await _report(client)
    assert len(shown["entries"]) == 3
    assert expired["entries"] == [] and expired["belowThreshold"] == 3
    from cds_service.persistence.gaps import patient_hash

    with sqlite3.connect(tmp_path / "store.sqlite3") as connection:
        rows = connection.execute(
            "SELECT patient_hash, hook_instance FROM vocabulary_gap_sighting"
        ).fetchall()
        salts = connection.execute("SELECT count(*) FROM vocabulary_gap_salt").fetchone()
    assert {row[1] for row in rows} == {"new"}
    assert {row[0] for row in rows} == {patient_hash("s3cret-salt", "patient-9")}
    assert salts == (0,)  # the setting's salt: none made in the store


def test_the_threshold_can_only_be_raised() -> None:
    from pydantic import ValidationError

    from cds_service.config import Settings

    with pytest.raises(ValidationError):
        Settings(gap_min_patients=4)
    assert Settings(gap_min_patients=8).gap_min_patients == 8


@pytest.mark.anyio
async def test_the_cli_prints_the_gaps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/store.sqlite3"
    async with app_client(settings_for(url)) as client:
        for patient in range(5):
            await post_hook(client, _with_gaps(f"c{patient}", f"patient-{patient}"))
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        # The reports read the store as of now: the calls above were made at the tests' NOW.
        monkeypatch.setenv("CDS_GAP_RETENTION_DAYS", "3650")
        get_settings.cache_clear()
        table = CliRunner().invoke(cli, ["analytics", "gaps"])
        as_json = CliRunner().invoke(cli, ["analytics", "gaps", "--format", "json"])
        higher = CliRunner().invoke(cli, ["analytics", "gaps", "--min-patients", "6"])
        lower = CliRunner().invoke(cli, ["analytics", "gaps", "--min-patients", "2"])
    finally:
        get_settings.cache_clear()
    assert table.exit_code == 0, table.output
    assert f"word: {WORD}" in table.output
    assert "close in hooks/pdph_imaging/imaging.yaml, codes" in table.output
    assert "5 hook calls, 5 patients" in table.output
    assert as_json.exit_code == 0 and '"closeIn"' in as_json.output
    assert higher.exit_code == 0 and WORD not in higher.output
    assert lower.exit_code == 2 and "can only be raised" in lower.output
