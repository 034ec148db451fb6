"""The batched audit writer: batches by size and by time, keeps rows while the store is down and
retries, bounds its queue with a counted drop, writes what is left at shutdown, and lets feedback
see its card's audit row at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import anyio
import pytest
from sqlalchemy import event, func, select

from cds_service.api.deps import runtime_of
from cds_service.persistence.audit_writer import AuditWriter
from cds_service.persistence.store import AuditRecord, FeedbackStore, audit, feedback
from cds_service.wire import FeedbackItem
from tests.ops_helpers import (
    SELECT,
    audit_record,
    call_hook,
    feedback_item,
    hook_request,
    metric,
    settings_for,
)
from tests.support.client import app_client


def _record(n: int, card: str | None = None) -> AuditRecord:
    return audit_record(f"hook-{n}", *([card] if card else []))


class FakeStore:
    """Records each batch; fails while `down` is set."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.down = False
        self.written = threading.Event()

    def save_audit(self, records: list[AuditRecord]) -> None:
        if self.down:
            raise ConnectionError("store unreachable")
        self.batches.append([r.hook_instance for r in records])
        self.written.set()


def _dropped(reason: str) -> float:
    return metric("cds_audit_rows_dropped_total", reason=reason)


def test_rows_wait_for_the_interval_then_go_in_one_batch() -> None:
    store = FakeStore()
    writer = AuditWriter(store, batch_rows=100, interval_s=0.3)
    writer.start()
    try:
        started = time.monotonic()
        for n in range(5):
            writer.submit([_record(n)])
        assert store.batches == []  # submit never writes
        assert store.written.wait(3)
        waited = time.monotonic() - started
    finally:
        writer.close()
    assert store.batches == [[f"hook-{n}" for n in range(5)]]
    assert 0.2 <= waited < 2.0


def test_a_full_batch_is_written_without_waiting_for_the_interval() -> None:
    store = FakeStore()
    writer = AuditWriter(store, batch_rows=3, interval_s=60)
    writer.start()
    try:
        writer.submit([_record(1), _record(2)])
        writer.submit([_record(3)])
        assert store.written.wait(3)
    finally:
        writer.close()
    assert store.batches == [["hook-1", "hook-2", "hook-3"]]


def test_a_long_queue_is_written_in_batches_of_the_configured_size() -> None:
    store = FakeStore()
    writer = AuditWriter(store, batch_rows=4, interval_s=60)
    for n in range(10):
        writer.submit([_record(n)])
    assert writer.flush()
    assert [len(b) for b in store.batches] == [4, 4, 2]


def test_rows_survive_a_store_outage_in_order_and_are_written_when_it_returns() -> None:
    store = FakeStore()
    writer = AuditWriter(store, batch_rows=100, interval_s=0.05)
    store.down = True
    writer.submit([_record(1)])
    assert not writer.flush()
    writer.submit([_record(2)])
    assert writer.pending() == 2
    writer.start()
    try:
        time.sleep(0.3)  # the thread retries and fails, backing off
        assert store.batches == [] and writer.pending() == 2
        store.down = False
        assert store.written.wait(10)
    finally:
        writer.close()
    assert store.batches == [["hook-1", "hook-2"]]


def test_the_queue_is_bounded_and_every_dropped_row_is_counted() -> None:
    store = FakeStore()
    writer = AuditWriter(store, batch_rows=100, interval_s=60, max_rows=3)
    full_before, outage_before = _dropped("queue-full"), _dropped("store-unavailable")
    writer.submit([_record(1), _record(2)])
    writer.submit([_record(3), _record(4)])  # one row fits
    assert writer.pending() == 3 and _dropped("queue-full") == full_before + 1
    store.down = True
    assert not writer.flush()
    writer.submit([_record(5)])  # queued again: the failed batch is back in front...
    assert writer.pending() == 3 and _dropped("queue-full") == full_before + 2
    store.down = False
    assert writer.flush()
    assert store.batches == [["hook-1", "hook-2", "hook-3"]]
    assert _dropped("store-unavailable") == outage_before


def test_a_failed_batch_requeued_behind_new_rows_drops_the_oldest_beyond_the_bound() -> None:
    class SlowFailingStore(FakeStore):
        def save_audit(self, records: list[AuditRecord]) -> None:
            writer.submit([_record(9)])  # arrives while the batch is in flight
            raise ConnectionError("store unreachable")

    store = SlowFailingStore()
    writer = AuditWriter(store, batch_rows=100, interval_s=60, max_rows=2)
    before = _dropped("store-unavailable")
    writer.submit([_record(1), _record(2)])
    assert not writer.flush()
    assert _dropped("store-unavailable") == before + 1
    writer._store = FakeStore()  # the store is back
    assert writer.flush()
    assert writer._store.batches == [["hook-2", "hook-9"]]  # type: ignore[attr-defined]


def test_close_writes_what_is_left_and_counts_it_dropped_when_the_store_is_down() -> None:
    store = FakeStore()
    writer = AuditWriter(store, batch_rows=100, interval_s=60)
    writer.start()
    writer.submit([_record(1)])
    writer.close()
    assert store.batches == [["hook-1"]]

    store.down = True
    writer = AuditWriter(store, batch_rows=100, interval_s=60)
    writer.start()
    before = _dropped("shutdown")
    writer.submit([_record(2), _record(3)])
    writer.close()
    assert _dropped("shutdown") == before + 2 and writer.pending() == 0


def test_flush_cards_writes_only_when_the_queue_holds_one_of_those_cards() -> None:
    store = FakeStore()
    writer = AuditWriter(store, batch_rows=100, interval_s=60)
    writer.submit([_record(1, card="card-a")])
    writer.flush_cards(["card-other"])
    assert store.batches == []
    writer.flush_cards(["card-other", "card-a"])
    assert store.batches == [["hook-1"]]


def test_with_a_real_store_feedback_right_after_its_hook_call_is_tied_to_the_card(
    tmp_path: Path,
) -> None:
    store = FeedbackStore(f"sqlite:///{tmp_path}/store.sqlite3")
    store.migrate()
    writer = AuditWriter(store, batch_rows=100, interval_s=60)
    writer.submit([_record(1, card="card-a"), _record(2, card="card-b"), _record(3)])
    item = FeedbackItem.model_validate(feedback_item("card-a", "accepted"))
    writer.flush_cards([item.card])
    saved = store.save(SELECT, [item])
    assert saved.flags == [None]
    with store.engine.connect() as connection:
        audits = connection.execute(select(func.count()).select_from(audit)).scalar_one()
        linked = connection.execute(select(feedback.c.hook_instance)).scalar_one()
    assert audits == 3 and linked == "hook-1"


@pytest.mark.parametrize("rows", [1, 250])
def test_a_real_batch_links_every_card_to_its_own_audit_row(tmp_path: Path, rows: int) -> None:
    store = FeedbackStore(f"sqlite:///{tmp_path}/store.sqlite3")
    store.migrate()
    # Feedback first (flagged unknown), then the batch holding its cards.
    items = [FeedbackItem.model_validate(feedback_item(f"card-{n}")) for n in range(rows)]
    assert store.save(SELECT, items).flags == ["unknown-card"] * rows
    store.save_audit([_record(n, card=f"card-{n}") for n in range(rows)])
    with store.engine.connect() as connection:
        linked = dict(
            connection.execute(
                select(feedback.c.card_uuid, feedback.c.hook_instance).where(
                    feedback.c.flag.is_(None)
                )
            ).all()
        )
    assert linked == {f"card-{n}": f"hook-{n}" for n in range(rows)}


@pytest.mark.anyio
async def test_a_hook_call_makes_no_database_round_trip(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path}/store.sqlite3", audit_flush_interval_s=60)
    checkouts: list[str] = []
    async with app_client(settings) as client:
        runtime = runtime_of(client.app)  # type: ignore[attr-defined]
        for engine in {runtime.store.engine, runtime.store.audit_engine}:
            event.listen(engine, "checkout", lambda *_: checkouts.append("checkout"))
        for n in range(5):
            assert await call_hook(client, hook_request(f"hook-{n}"))
        assert checkouts == [] and runtime.audit.pending() == 5
        await anyio.to_thread.run_sync(runtime.audit.flush)
        assert checkouts and runtime.audit.pending() == 0
        with runtime.store.engine.connect() as connection:
            rows = connection.execute(select(func.count()).select_from(audit)).scalar_one()
    assert rows == 5


def test_close_does_not_wait_twice_for_a_store_that_hangs() -> None:
    class HangingStore(FakeStore):
        def __init__(self) -> None:
            super().__init__()
            self.entered = threading.Event()
            self.release = threading.Event()

        def save_audit(self, records: list[AuditRecord]) -> None:
            self.entered.set()
            self.release.wait(10)
            raise ConnectionError("store unreachable")

    store = HangingStore()
    writer = AuditWriter(store, batch_rows=1, interval_s=60)
    writer.start()
    writer.submit([_record(1)])  # a full batch: the thread starts writing it and hangs
    assert store.entered.wait(3)
    writer.submit([_record(2)])
    before = _dropped("shutdown")
    started = time.monotonic()
    writer.close(timeout_s=0.2)
    assert time.monotonic() - started < 2  # not a second wait on the hanging write
    assert _dropped("shutdown") == before + 1 and writer.pending() == 0
    store.release.set()  # the hung write fails at last: its row is dropped and counted too
    deadline = time.monotonic() + 3
    while _dropped("shutdown") < before + 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _dropped("shutdown") == before + 2 and writer.pending() == 0
