"""Reading Bundles, as every part of the service receives them (prefetch values, FHIR server pages,
the draftOrders of a hook): one reader, tolerant of what real EHRs send (no `type`, no `fullUrl`,
entries that are not objects), and one index of resources by reference."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def entry_resources(bundle: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The resources of a Bundle's entries, or None when `entry` is not a list (absent is none)."""
    entries = bundle.get("entry")
    if entries is None:
        return []
    if not isinstance(entries, list):
        return None
    return [
        e["resource"]
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]


def by_reference(resources: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Resources by their relative reference ("Condition/c-1"), for resolving a reasonReference."""
    return {
        f"{r.get('resourceType')}/{r['id']}": r for r in resources if isinstance(r.get("id"), str)
    }
