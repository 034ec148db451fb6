"""The store on the real PostgreSQL server of this machine (127.0.0.1:5432, database `test`), in a
fresh schema dropped afterwards. Skipped, saying why, when no server answers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from cds_service.persistence.store import FeedbackStore, metadata
from cds_service.wire import FeedbackItem
from tests.ops_helpers import (
    NOW,
    SELECT,
    _iso,
    feedback_item,
    postgres_schema,
    settings_for,
    ward_day,
)
from tests.support.client import app_client

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


def test_workers_starting_together_migrate_once(postgres_url: str) -> None:
    stores = [FeedbackStore(postgres_url) for _ in range(4)]
    errors: list[BaseException] = []

    def start(store: FeedbackStore) -> None:
        try:
            store.migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert all(s.schema_is_current() for s in stores)
    with stores[0].engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
        assert schema.startswith("cds_test_")
        assert {"feedback", "audit", "audit_card", "alembic_version"} <= set(
            inspect(connection).get_table_names()
        )


def test_resubmitted_feedback_is_stored_once(postgres_url: str) -> None:
    store = FeedbackStore(postgres_url)
    store.migrate()
    before = store.count()
    at = NOW - timedelta(days=100)  # outside the analytics test's window
    item = FeedbackItem.model_validate(feedback_item("pg-card-1", reason="local-protocol", at=at))
    later = FeedbackItem.model_validate(
        feedback_item("pg-card-1", reason="local-protocol", at=at + timedelta(seconds=1))
    )
    assert store.save(SELECT, [item, item]).stored == 1
    assert store.save(SELECT, [item]).stored == 0
    assert store.save(SELECT, [item, later]).stored == 1
    assert store.count() - before == 2


@pytest.mark.anyio
async def test_analytics_on_postgres(postgres_url: str) -> None:
    since, until = NOW - timedelta(days=1), NOW + timedelta(hours=1)
    async with app_client(settings_for(postgres_url)) as client:
        await ward_day(client)
        response = await client.get(
            "/analytics/overrides", params={"since": _iso(since), "until": _iso(until)}
        )
    summary = response.json()
    rows = {
        s["scenario"]: (s["shown"], s["accepted"], s["overridden"]) for s in summary["scenarios"]
    }
    assert rows == {
        "pdph-acute": (3, 1, 2),
        "pdph-acute-red-flags": (1, 1, 0),
        "pdph-persistent": (2, 0, 2),
    }  # feedback for a card never issued is stored but flagged, not counted
