"""The store on embedded SQLite: Alembic migrations, idempotent feedback, audit rows and the
hookInstance join."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select

from cds_service.cli import cli
from cds_service.config import get_settings
from cds_service.persistence import feedback as feedback_module
from cds_service.persistence.store import (
    FeedbackStore,
    audit,
    audit_card,
    feedback,
    metadata,
)
from cds_service.wire import FeedbackItem
from tests.ops_helpers import NOW, SELECT, audit_record, feedback_item
from tests.support.cli import CliRunner


def _items(*raw: dict[str, object]) -> list[FeedbackItem]:
    return [FeedbackItem.model_validate(r) for r in raw]


def test_migrations_create_the_schema_the_code_uses(tmp_path: Path) -> None:
    store = FeedbackStore(f"sqlite:///{tmp_path}/store.sqlite3")
    assert not store.schema_is_current()
    store.migrate()
    store.migrate()  # a second start-up is a no-op
    assert store.schema_is_current()
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        assert {"feedback", "audit", "audit_card", "alembic_version"} <= set(
            inspect(connection).get_table_names()
        )


def test_a_database_created_before_alembic_is_adopted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.sqlite3"
    legacy = create_engine(url)
    with legacy.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE feedback (id INTEGER PRIMARY KEY, service_id VARCHAR(128) NOT NULL, "
            "card_uuid VARCHAR(256) NOT NULL, outcome VARCHAR(16) NOT NULL, accepted_suggestions "
            "TEXT, override_reason_system VARCHAR(256), override_reason_code VARCHAR(256), "
            "override_reason_display TEXT, user_comment TEXT, outcome_timestamp DATETIME NOT NULL, "
            "received_at DATETIME NOT NULL, CONSTRAINT uq_feedback_item UNIQUE (card_uuid, outcome, "
            "outcome_timestamp))"
        )
        connection.exec_driver_sql(
            "INSERT INTO feedback (service_id, card_uuid, outcome, outcome_timestamp, received_at) "
            "VALUES ('s', 'old-card', 'accepted', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
    legacy.dispose()
    store = FeedbackStore(url)
    store.migrate()
    assert store.schema_is_current()
    assert store.count() == 1


def test_in_memory_store_is_one_database_across_threads() -> None:
    store = FeedbackStore("sqlite:///:memory:")
    store.migrate()
    thread = threading.Thread(
        target=store.save, args=(SELECT, _items(feedback_item("c1", reason="local-protocol")))
    )
    thread.start()
    thread.join()
    assert store.count() == 1


def test_resubmitted_feedback_is_stored_once(tmp_path: Path) -> None:
    store = FeedbackStore(f"sqlite:///{tmp_path}/store.sqlite3")
    store.migrate()
    first = feedback_item("c1", reason="local-protocol", display="Local protocol")
    later = feedback_item("c1", reason="local-protocol", at=NOW + timedelta(minutes=1))
    assert store.save(SELECT, _items(first, first)).stored == 1
    assert store.save(SELECT, _items(first)).stored == 0
    assert store.save(SELECT, _items(first, later)).stored == 1
    assert store.count() == 2


def test_feedback_gets_the_hook_instance_of_its_card_whichever_comes_first(
    tmp_path: Path,
) -> None:
    store = FeedbackStore(f"sqlite:///{tmp_path}/store.sqlite3")
    store.migrate()
    store.save_audit([audit_record("hook-a", "card-a1"), audit_record("hook-a", scenario="sih")])
    store.save(SELECT, _items(feedback_item("card-a1", "accepted", accepted=["s1"])))
    store.save(SELECT, _items(feedback_item("card-b1"), feedback_item("card-unknown")))
    store.save_audit([audit_record("hook-b", "card-b1")])  # audit written after its feedback
    with store.engine.connect() as connection:
        query = select(feedback.c.card_uuid, feedback.c.hook_instance)
        rows = {card: instance for card, instance in connection.execute(query)}
        audits = [
            tuple(r) for r in connection.execute(select(audit.c.hook_instance, audit.c.scenario))
        ]
        cards = connection.execute(select(audit_card.c.card_uuid)).scalars().all()
    assert rows == {"card-a1": "hook-a", "card-b1": "hook-b", "card-unknown": None}
    assert sorted(audits) == [("hook-a", "pdph-acute"), ("hook-a", "sih"), ("hook-b", "pdph-acute")]
    assert sorted(cards) == ["card-a1", "card-b1"]


def test_an_unknown_card_flag_is_cleared_when_the_audit_lands_between_check_and_insert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FeedbackStore(f"sqlite:///{tmp_path}/store.sqlite3")
    store.migrate()
    items = _items(feedback_item("card-late"), feedback_item("card-never"))
    looked_up = feedback_module._card_origins

    def audit_lands_after_the_check(*args: Any) -> Any:
        origins = looked_up(*args)
        store.save_audit([audit_record("hook-late", "card-late")])  # another worker's batch commits
        return origins

    monkeypatch.setattr(feedback_module, "_card_origins", audit_lands_after_the_check)
    saved = store.save(SELECT, items, lambda scenario: frozenset())
    assert saved.flags == ["unknown-card", "unknown-card"]  # what the check saw
    with store.engine.connect() as connection:
        rows = dict(connection.execute(select(feedback.c.card_uuid, feedback.c.flag)).all())
        instances = dict(
            connection.execute(select(feedback.c.card_uuid, feedback.c.hook_instance)).all()
        )
    assert rows == {"card-late": None, "card-never": "unknown-card"}
    assert instances == {"card-late": "hook-late", "card-never": None}


def test_migrate_command_then_analytics_reads_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/cli.sqlite3")
    get_settings.cache_clear()
    try:
        before = CliRunner().invoke(cli, ["analytics"])
        migrated = CliRunner().invoke(cli, ["migrate"])
        after = CliRunner().invoke(cli, ["analytics", "--json"])
    finally:
        get_settings.cache_clear()
    assert before.exit_code == 2 and "migrated" in before.output
    assert (
        migrated.exit_code == 0
        and FeedbackStore(f"sqlite:///{tmp_path}/cli.sqlite3").schema_is_current()
    )
    assert after.exit_code == 0 and '"total"' in after.output
