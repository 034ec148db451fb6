"""The cyclic garbage collector tuned for a service that holds a large, long-lived heap (models,
knowledge, libraries) and now and then parses a huge FHIR answer (issue 23).

- Everything loaded before the first call lives as long as the process: `gc.freeze()` moves it out
  of the collector's sight, so a full collection never re-scans it.
- A full collection scans every object that survived since: while a call holds the 17,500
  resources of a refused paged search, or the 18,000 Observations of a huge record, one pass takes
  10-25 ms with the GIL held, and with CPython's default thresholds two or three such passes run
  during the read, each stalling every other call on the worker. A full collection is let wait for
  100 middle-generation passes instead of 10 (about 700,000 surviving allocations, not 70,000):
  measured by tests/test_hostile_fhir.py, the worst `/healthz` wait during those calls fell from
  26-31 ms to 11-15 ms. JSON has no reference cycles, so what a call parsed is freed by reference
  counting when the call ends, collector or not; only rare cyclic garbage waits longer."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

FULL_COLLECTION_EVERY = 100  # middle-generation passes (CPython's default: 10)

_COLLECTED = False


@contextmanager
def tuned_collector() -> Iterator[None]:
    """Freeze the heap loaded so far and space full collections out while the app serves; both
    undone on exit (tests build many apps in one process)."""
    global _COLLECTED
    if not _COLLECTED:  # once per process: later apps (tests, tools) need not pay 0.1 s
        gc.collect()
        _COLLECTED = True
    young, middle, old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(young, middle, max(old, FULL_COLLECTION_EVERY))
    try:
        yield
    finally:
        gc.set_threshold(young, middle, old)
        gc.unfreeze()
