"""The per-process audit writer: hook calls hand it their audit rows and return; a thread writes them
in batches, so a hook call costs no database round trip.

- A batch is written when `batch_rows` rows are waiting or `interval_s` after the first one arrived,
  whichever comes first, and at shutdown (`close`).
- The queue is bounded (`max_rows`). While the store is unreachable the rows wait and the writer
  retries with a growing pause (up to 5 s); rows beyond the bound are dropped, counted
  (`cds_audit_rows_dropped_total`) and logged, never turned into an error for the EHR.
- Feedback stays synchronous and durable: before it is stored, `flush_cards` writes the rows of the
  cards it names, so the card's scenario and hookInstance are known when its flags are computed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Protocol

from cds_service.observability.metrics import AUDIT_DROPPED, AUDIT_QUEUED, STORE_ERRORS
from cds_service.persistence.gaps import GapSighting
from cds_service.persistence.store import AuditRecord

log = logging.getLogger(__name__)

MAX_RETRY_PAUSE_S = 5.0


# What a hook call leaves to be written: its audit rows, and the vocabulary gaps it met.
Row = AuditRecord | GapSighting


class AuditStore(Protocol):
    def save_audit(self, records: list[Row]) -> None: ...


class AuditWriter:
    def __init__(
        self,
        store: AuditStore,
        *,
        batch_rows: int = 500,
        interval_s: float = 0.2,
        max_rows: int = 20_000,
    ) -> None:
        self._store = store
        self.batch_rows = batch_rows
        self.interval_s = interval_s
        self.max_rows = max_rows
        self._pending: list[Row] = []
        self._lock = threading.Lock()  # guards _pending
        self._writing = threading.Lock()  # one batch in flight at a time, in order
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- the hook call's side -----------------------------------------------------------------------

    def submit(self, records: list[Row]) -> None:
        """Queue one hook call's rows (never blocks on the database)."""
        if not records:
            return
        with self._lock:
            room = self.max_rows - len(self._pending)
            kept = records[: max(room, 0)]
            self._pending.extend(kept)
            waiting = len(self._pending)
            AUDIT_QUEUED.set(waiting)
        if len(kept) < len(records):
            _dropped(len(records) - len(kept), records[0].hook_instance, "queue-full")
        if waiting >= self.batch_rows:
            self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # -- writing ------------------------------------------------------------------------------------

    def flush(self) -> bool:
        """Write every queued row now, `batch_rows` per transaction; False when the store refused
        them (the unwritten rows stay queued, up to the bound)."""
        with self._writing:
            with self._lock:
                batch, self._pending = self._pending, []
                AUDIT_QUEUED.set(0)
            for start in range(0, len(batch), self.batch_rows):
                try:
                    self._store.save_audit(batch[start : start + self.batch_rows])
                except Exception as exc:
                    STORE_ERRORS.labels("audit").inc()
                    log.warning(
                        "audit_write_failed",
                        extra={"error_class": type(exc).__name__, "rows": len(batch) - start},
                    )
                    self._requeue(batch[start:])
                    return False
            return True

    def flush_cards(self, card_uuids: Iterable[str]) -> None:
        """Write the queue now if it holds the audit row of any of these cards."""
        wanted = set(card_uuids)
        with self._lock:
            queued = any(
                uuid in wanted
                for r in self._pending
                if isinstance(r, AuditRecord)
                for uuid, _ in r.cards
            )
        if queued:
            self.flush()

    def _requeue(self, batch: list[Row]) -> None:
        """Put a failed batch back in front of what arrived meanwhile; the oldest rows beyond the
        bound are dropped. After `close` there is no later attempt: the batch is dropped."""
        if self._stopping and self._thread is None:
            _dropped(len(batch), batch[0].hook_instance, "shutdown")
            return
        with self._lock:
            self._pending = batch + self._pending
            excess = len(self._pending) - self.max_rows
            if excess > 0:
                dropped, self._pending = self._pending[:excess], self._pending[excess:]
            AUDIT_QUEUED.set(len(self._pending))
        if excess > 0:
            _dropped(len(dropped), dropped[0].hook_instance, "store-unavailable")

    # -- the writer thread --------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and write what is left (one attempt): called at shutdown. When the thread
        is still stuck in a write after `timeout_s` (a store that does not answer), what is queued
        is dropped and counted rather than holding the shutdown up a second time."""
        thread, self._thread = self._thread, None
        self._stopping = True  # from now on a failed write drops its rows (see _requeue)
        self._wake.set()
        if thread is not None:
            thread.join(timeout_s)
        if thread is None or not thread.is_alive():
            self.flush()
        with self._lock:
            left, self._pending = len(self._pending), []
            AUDIT_QUEUED.set(0)
        if left:
            _dropped(left, None, "shutdown")

    def _run(self) -> None:
        pause = self.interval_s
        while not self._stopping:
            self._wake.wait(pause)
            self._wake.clear()
            if self._stopping:
                return
            written = self.flush()
            pause = self.interval_s if written else min(max(pause, 0.25) * 2, MAX_RETRY_PAUSE_S)


def _dropped(rows: int, hook_instance: str | None, reason: str) -> None:
    AUDIT_DROPPED.labels(reason).inc(rows)
    log.warning(
        "audit_rows_dropped",
        extra={"rows": rows, "reason": reason, "hookInstance": hook_instance},
    )
