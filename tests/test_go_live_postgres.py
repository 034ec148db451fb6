"""Go-live on PostgreSQL (SPEC §6): migration 0006 over a store holding audit rows (their cards counted
as shown), the silent fortnight's firing report, and the vocabulary gaps (upserts, the store's own
salt made once by concurrent workers)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import select, text

from cds_service.persistence.migrations import alembic_config
from cds_service.persistence.schema import audit
from cds_service.persistence.store import FeedbackStore
from tests.ops_helpers import NOW, _iso, audit_record, postgres_schema, settings_for
from tests.support.client import app_client
from tests.test_firing_report import SINCE, UNTIL, fortnight
from tests.test_vocabulary_gaps import WORD, _with_gaps

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


def test_migration_0006_counts_the_cards_of_earlier_rows_as_shown(postgres_url: str) -> None:
    store = FeedbackStore(postgres_url)
    with store.engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0005")
        audit_id = connection.execute(
            text(
                "INSERT INTO audit (hook_instance, service_id, scenario, rating, study_type, "
                "latency_ms, evaluated_at) VALUES ('h-1', 's', 'pdph-acute', 'r', 'ct', 1, now()) "
                "RETURNING id"
            )
        ).scalar_one()
        connection.execute(
            text(
                "INSERT INTO audit_card (card_uuid, audit_id, indicator) VALUES ('c1', :id, 'info')"
            ),
            {"id": audit_id},
        )
    store.migrate()
    with store.engine.connect() as connection:
        row = connection.execute(
            select(audit.c.cards_shown, audit.c.cards_withheld, audit.c.traffic)
        ).one()
    assert tuple(row) == (1, 0, None)
    store.save_audit([audit_record("h-2", "c2", "c3")])
    with store.engine.connect() as connection:
        shown = connection.execute(
            select(audit.c.cards_shown).where(audit.c.hook_instance == "h-2")
        ).scalar_one()
    assert shown == 2
    store.engine.dispose()


@pytest.mark.anyio
async def test_the_silent_fortnight_on_postgres(postgres_url: str) -> None:
    FeedbackStore(postgres_url).migrate()
    clock = await fortnight(postgres_url)
    clock.now = UNTIL + timedelta(hours=9)
    async with app_client(settings_for(postgres_url), clock=clock) as client:
        report = (
            await client.get(
                "/analytics/firing", params={"since": _iso(SINCE), "until": _iso(UNTIL)}
            )
        ).json()
    totals = [
        (
            p["period"],
            p["hookCalls"],
            p["cardsShown"],
            p["cardsWithheld"],
            p["accepted"],
            p["overridden"],
        )
        for p in report["periods"]
    ]
    assert totals == [("2026-W47", 28, 0, 28, 0, 0), ("2026-W48", 28, 28, 0, 8, 7)]


@pytest.mark.anyio
async def test_vocabulary_gaps_on_postgres(postgres_url: str) -> None:
    FeedbackStore(postgres_url).migrate()
    salts: list[str] = []

    def salt() -> None:
        salts.append(FeedbackStore(postgres_url)._salt())

    workers = [threading.Thread(target=salt) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert len(salts) == 4 and len(set(salts)) == 1  # one salt, whoever made it
    async with app_client(settings_for(postgres_url)) as client:
        for patient in range(5):
            request = _with_gaps(f"pg-{patient}", f"patient-{patient}")
            response = await client.post("/cds-services/pdph-imaging-order-select", json=request)
            assert response.status_code == 200
            again = await client.post("/cds-services/pdph-imaging-order-select", json=request)
            assert again.status_code == 200  # the EHR retried: one sighting
        report = (await client.get("/analytics/vocabulary-gaps")).json()
    word = next(e for e in report["entries"] if e["kind"] == "word")
    assert (word["text"], word["hookCalls"], word["patients"]) == (WORD, 5, 5)
    assert word["firstSeen"] == _iso(NOW)
