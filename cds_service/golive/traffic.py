"""Calls that are not a clinician's: the replay harness (`cds-service replay`, `knowledge diff`) and the
demo page mark theirs with a header, and the service keeps them out of the firing report, the
override analytics, the vocabulary gaps and the go-live counters (SPEC §6). They are answered as any
other call and still audited, with the mark."""

from __future__ import annotations

import re

TRAFFIC_HEADER = "X-CDS-Traffic"
REPLAY = "replay"
DEMO = "demo"
OTHER = "test"  # any other value: marked, but not one of ours
_SAFE = re.compile(r"^[a-z][a-z0-9-]{0,15}$")


def traffic_mark(value: str | None) -> str | None:
    """The mark an audit row carries (None: a real call); a value not of the expected shape is
    recorded as `test`, never as written."""
    if value is None or not value.strip():
        return None
    value = value.strip().lower()
    return value if _SAFE.match(value) else OTHER
