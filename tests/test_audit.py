"""Audit rows per evaluated draft order, written after the answer; store failures never reach the
EHR as a 500."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import pytest
from sqlalchemy import select

from cds_service.api.deps import runtime_of
from cds_service.persistence.store import FeedbackStore, audit, audit_card, feedback
from tests.ops_helpers import (
    MRI_BRAIN,
    SELECT,
    call_hook,
    feedback_item,
    hook_request,
    metric,
    scenario_of,
    settings_for,
)
from tests.support.client import app_client


def _store_errors(operation: str) -> float:
    return metric("cds_store_errors_total", operation=operation)


def _dropped(reason: str) -> float:
    return metric("cds_audit_rows_dropped_total", reason=reason)


@pytest.mark.anyio
async def test_each_decision_gets_an_audit_row_with_its_cards(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/store.sqlite3")
    async with app_client(settings) as client:
        acute = await call_hook(client, hook_request("hook-acute"))
        persistent = await call_hook(
            client, hook_request("hook-late", hours_since_puncture=96, study=MRI_BRAIN)
        )
        silent = await call_hook(client, hook_request("hook-cbc", study=("85025", "CBC")))
        store: FeedbackStore = runtime_of(client.app).store  # type: ignore[attr-defined]
    assert silent == []
    with store.engine.connect() as connection:
        rows = connection.execute(select(audit).order_by(audit.c.id)).mappings().all()
        cards = dict(
            connection.execute(select(audit_card.c.card_uuid, audit_card.c.audit_id)).all()
        )
    assert [(r["hook_instance"], r["scenario"], r["rating"], r["study_type"]) for r in rows] == [
        (
            "hook-acute",
            "pdph-acute",
            "usually-not-appropriate",
            acute[0]["extension"]["pdph-imaging.study-type"],
        ),
        (
            "hook-late",
            "pdph-persistent",
            "usually-not-appropriate",
            persistent[0]["extension"]["pdph-imaging.study-type"],
        ),
    ]
    assert rows[0]["hours_since_puncture"] == pytest.approx(36.0)
    assert all(r["latency_ms"] > 0 and r["service_id"] == SELECT for r in rows)
    assert cards == {acute[0]["uuid"]: rows[0]["id"], persistent[0]["uuid"]: rows[1]["id"]}
    assert scenario_of(acute[0]) == "pdph-acute"


@pytest.mark.anyio
async def test_audit_rows_hold_no_patient_identifier(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/store.sqlite3")
    async with app_client(settings) as client:
        await call_hook(client, hook_request("hook-1", patient="pat-secret-42"))
        store: FeedbackStore = runtime_of(client.app).store  # type: ignore[attr-defined]
    with store.engine.connect() as connection:
        values = [str(v) for row in connection.execute(select(audit)) for v in row]
    assert values and not any("pat-secret-42" in v or "sr-1" in v for v in values)


@pytest.mark.anyio
async def test_a_failing_audit_write_is_logged_and_counted_not_answered_with_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/store.sqlite3")
    async with app_client(settings) as client:
        store: FeedbackStore = runtime_of(client.app).store  # type: ignore[attr-defined]

        def broken(*_: object) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(store, "save_audit", broken)
        logging.getLogger().addHandler(caplog.handler)  # create_app replaced the root handlers
        before = _store_errors("audit")
        dropped = _dropped("shutdown")
        cards = await call_hook(client, hook_request("hook-store-down"))
        assert cards  # answered before any write was tried
        assert not await anyio.to_thread.run_sync(runtime_of(client.app).audit.flush)  # type: ignore[attr-defined]
        assert runtime_of(client.app).audit.pending() == 1  # type: ignore[attr-defined]
    # One failed flush, then the last attempt at shutdown: the row is dropped and counted.
    assert _store_errors("audit") == before + 2
    assert _dropped("shutdown") == dropped + 1
    failures = [r for r in caplog.records if r.getMessage() == "audit_write_failed"]
    assert failures and failures[0].__dict__["rows"] == 1
    drops = [r for r in caplog.records if r.getMessage() == "audit_rows_dropped"]
    assert [(r.__dict__["rows"], r.__dict__["reason"]) for r in drops] == [(1, "shutdown")]


@pytest.mark.anyio
async def test_feedback_while_the_store_is_down_is_a_503_the_ehr_can_retry(
    tmp_path: Path,
) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/store.sqlite3")
    async with app_client(settings) as client:
        cards = await call_hook(client, hook_request("hook-1"))
        store: FeedbackStore = runtime_of(client.app).store  # type: ignore[attr-defined]
        with store.engine.begin() as connection:
            connection.execute(feedback.delete())
            connection.exec_driver_sql("DROP TABLE feedback")
        before = _store_errors("request")
        response = await client.post(
            f"/cds-services/{SELECT}/feedback",
            json={"feedback": [feedback_item(cards[0]["uuid"], reason="local-protocol")]},
        )
        hook = await client.post(f"/cds-services/{SELECT}", json=hook_request("hook-2"))
    assert response.status_code == 503
    assert response.json()["error"] == "store-unavailable"
    assert response.headers["retry-after"]
    assert _store_errors("request") == before + 1
    assert hook.status_code == 200 and hook.json()["cards"]


@pytest.mark.anyio
async def test_a_decision_without_a_card_is_audited_too(tmp_path: Path) -> None:
    """DSM drafted in the persistent scenario: appropriate, no card by default, still audited."""
    dsm = ("72270", "Digital subtraction myelography, complete spine")
    settings = settings_for(f"sqlite:///{tmp_path}/store.sqlite3")
    async with app_client(settings) as client:
        cards = await call_hook(
            client, hook_request("hook-dsm", hours_since_puncture=96, study=dsm)
        )
        store: FeedbackStore = runtime_of(client.app).store  # type: ignore[attr-defined]
    with store.engine.connect() as connection:
        rows = connection.execute(select(audit.c.scenario, audit.c.rating)).all()
        shown = connection.execute(select(audit_card)).all()
    assert cards == [] and shown == []
    assert [tuple(r) for r in rows] == [("pdph-persistent", "usually-appropriate")]


@pytest.mark.anyio
async def test_a_silent_imaging_order_is_audited_as_none(tmp_path: Path) -> None:
    """An MRI for an MS work-up gets no card and no rating, but the evaluation is still on record."""
    from tests.conftest import fixture

    fx = fixture("ms-workup-mri-without-headache-is-silent")
    settings = settings_for(f"sqlite:///{tmp_path}/store.sqlite3")
    async with app_client(settings) as client:
        response = await client.post(f"/cds-services/{fx['service']}", json=fx["request"])
        store: FeedbackStore = runtime_of(client.app).store  # type: ignore[attr-defined]
    assert response.json()["cards"] == []
    [update] = response.json()["systemActions"]  # the PAMA rating: no criteria apply
    assert "no-criteria-apply" in str(update["resource"]["extension"])
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(audit.c.scenario, audit.c.rating, audit.c.study_type)
        ).all()
    assert [tuple(r) for r in rows] == [("none", "none", "mri-head-without-and-with")]
