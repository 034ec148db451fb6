"""Vocabulary gaps in the store (SPEC §6): imaging-looking draft orders the classifier could not place
(their names and their codes) and the words the fail-safe rule could not interpret, with the hook
calls and patients they were met in. Never in logs, never in metrics' labels.

A patient is stored only as a keyed hash (HMAC-SHA-256 of the patient id with a salt: CDS_GAP_SALT,
else a random salt the store makes on first use and keeps); an entry is shown only once met for at
least `min_patients` distinct patients (5 by default, never fewer), so a name or number typed into
one patient's orders never surfaces. Sightings older than the retention period are deleted, and an
entry none is left of with them."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, and_, delete, exists, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from cds_service.persistence.schema import gap_salt, gap_sighting, vocabulary_gap

GapKind = Literal["order-name", "order-code", "word", "reason-code"]
MAX_TERM = 300  # characters kept of a name or word (the column holds them)
PRUNE_EVERY = timedelta(hours=1)


@dataclass(frozen=True)
class GapSighting:
    """One gap met in one hook call. `patient_id` is hashed when the sighting is stored: it is never
    stored, logged or shown as is."""

    hook_instance: str
    service_id: str
    knowledge: str  # the knowledge folder, hooks/<knowledge>/
    kind: GapKind
    system: str  # the code system of a code; "" for names and words
    term: str  # what identifies the entry: a code as sent, a name or word folded to lower case
    text: str  # as first met: the name in its own capitals, a code's display
    patient_id: str
    seen_at: datetime
    scenario: str | None  # the scenario decided in that call (for a word: the one it concerned)


def fold(text: str) -> str:
    """The key of a name or word: whitespace collapsed, case folded, clipped."""
    return " ".join(text.split()).casefold()[:MAX_TERM]


def patient_hash(salt: str, patient_id: str) -> str:
    return hmac.new(salt.encode(), patient_id.encode(), hashlib.sha256).hexdigest()[:32]


def store_salt(connection: Connection) -> str:
    """The store's own salt, made (random, 256 bits) the first time any worker needs it."""
    found = connection.execute(select(gap_salt.c.salt).where(gap_salt.c.id == 1)).scalar()
    if found is None:
        insert = (postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert)(
            gap_salt
        )
        connection.execute(
            insert.values(id=1, salt=secrets.token_hex(32)).on_conflict_do_nothing(
                index_elements=["id"]
            )
        )
        found = connection.execute(select(gap_salt.c.salt).where(gap_salt.c.id == 1)).scalar_one()
    return str(found)


def save_sightings(connection: Connection, sightings: Sequence[GapSighting], salt: str) -> None:
    """Store sightings (a hook call's gap counted once per call, however often the EHR retries it)."""
    if not sightings:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    keys = {(s.knowledge, s.kind, s.system, s.term): s for s in sightings}
    connection.execute(
        dialect.insert(vocabulary_gap).on_conflict_do_nothing(
            index_elements=["knowledge", "kind", "system", "term"]
        ),
        [
            {
                "knowledge": k[0],
                "kind": k[1],
                "system": k[2],
                "term": k[3],
                "text": s.text[:MAX_TERM],
            }
            for k, s in keys.items()
        ],
    )
    columns = (
        vocabulary_gap.c.knowledge,
        vocabulary_gap.c.kind,
        vocabulary_gap.c.system,
        vocabulary_gap.c.term,
    )
    ids = {
        (row.knowledge, row.kind, row.system, row.term): row.id
        for row in connection.execute(
            select(vocabulary_gap.c.id, *columns).where(tuple_(*columns).in_(list(keys)))
        )
    }
    rows = {
        (ids[(s.knowledge, s.kind, s.system, s.term)], s.hook_instance): {
            "gap_id": ids[(s.knowledge, s.kind, s.system, s.term)],
            "hook_instance": s.hook_instance,
            "patient_hash": patient_hash(salt, s.patient_id),
            "seen_at": s.seen_at.astimezone(UTC),
            "scenario": s.scenario,
        }
        for s in sightings
    }
    connection.execute(
        dialect.insert(gap_sighting).on_conflict_do_nothing(
            index_elements=["gap_id", "hook_instance"]
        ),
        list(rows.values()),
    )


def prune(connection: Connection, before: datetime) -> None:
    """Delete the sightings older than `before`, and the entries with none left."""
    connection.execute(delete(gap_sighting).where(gap_sighting.c.seen_at < before.astimezone(UTC)))
    connection.execute(
        delete(vocabulary_gap).where(~exists().where(gap_sighting.c.gap_id == vocabulary_gap.c.id))
    )


# -- the report -------------------------------------------------------------------------------------

# Where each kind of gap is closed (docs/knowledge.md explains each file and key).
CLOSE_WITH: dict[str, tuple[str, str, str]] = {
    "order-name": (
        "imaging.yaml",
        "text (modality, region, contrast)",
        "the order was not evaluated (no card, no PAMA rating)",
    ),
    "order-code": (
        "imaging.yaml",
        "codes",
        "the order was not evaluated (no card, no PAMA rating)",
    ),
    "word": (
        "valuesets.yaml",
        "findings.<finding>.text, or language.filler_words for a word that says nothing clinical",
        "the card could not discourage imaging or rate the order (fail-safe rule)",
    ),
    "reason-code": (
        "valuesets.yaml",
        "findings.<finding>.codes",
        "the card could not discourage imaging or rate the order (fail-safe rule)",
    ),
}


class GapEntry(BaseModel):
    kind: GapKind
    text: str
    system: str | None = None
    code: str | None = None
    hookCalls: int
    patients: int
    firstSeen: datetime
    lastSeen: datetime
    exampleScenario: str | None = None
    effect: str
    closeIn: str  # the YAML file, hooks/<knowledge>/<file>
    closeWith: str  # its key


class GapReport(BaseModel):
    generatedAt: datetime
    since: datetime  # the start of the retention period
    minPatients: int
    retentionDays: int
    entries: list[GapEntry]
    belowThreshold: int  # entries met for fewer patients: counted, never shown
    note: str = (
        "Only entries met for at least minPatients distinct patients are shown; calls marked as "
        "replay-harness or demo traffic are not counted."
    )


def gap_report(engine: Engine, now: datetime, min_patients: int, retention_days: int) -> GapReport:
    since = (now - timedelta(days=retention_days)).astimezone(UTC)
    until = now.astimezone(UTC) + timedelta(seconds=1)
    patients = func.count(func.distinct(gap_sighting.c.patient_hash))
    grouped = (
        select(
            vocabulary_gap.c.knowledge,
            vocabulary_gap.c.kind,
            vocabulary_gap.c.system,
            vocabulary_gap.c.term,
            vocabulary_gap.c.text,
            func.count(func.distinct(gap_sighting.c.hook_instance)).label("calls"),
            patients.label("patients"),
            func.min(gap_sighting.c.seen_at),
            func.max(gap_sighting.c.seen_at),
            func.max(gap_sighting.c.scenario),
        )
        .select_from(
            vocabulary_gap.join(
                gap_sighting,
                and_(
                    gap_sighting.c.gap_id == vocabulary_gap.c.id,
                    gap_sighting.c.seen_at >= since,
                    gap_sighting.c.seen_at < until,
                ),
            )
        )
        .group_by(vocabulary_gap.c.id)
    )
    entries: list[GapEntry] = []
    below = 0
    with engine.connect() as connection:
        for (
            knowledge,
            kind,
            system,
            term,
            text,
            calls,
            count,
            first,
            last,
            scenario,
        ) in connection.execute(grouped):
            if int(count) < min_patients:
                below += 1
                continue
            file, key, effect = CLOSE_WITH[kind]
            coded = kind in ("order-code", "reason-code")
            entries.append(
                GapEntry(
                    kind=kind,
                    text=text,
                    system=system or None,
                    code=term if coded else None,
                    hookCalls=int(calls),
                    patients=int(count),
                    firstSeen=_utc(first),
                    lastSeen=_utc(last),
                    exampleScenario=scenario,
                    effect=effect,
                    closeIn=f"hooks/{knowledge}/{file}",
                    closeWith=key,
                )
            )
    entries.sort(key=lambda e: (-e.hookCalls, e.kind, e.text))
    return GapReport(
        generatedAt=now,
        since=since,
        minPatients=min_patients,
        retentionDays=retention_days,
        entries=entries,
        belowThreshold=below,
    )


def _utc(moment: datetime) -> datetime:
    """SQLite gives instants back without their zone; they were stored in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


GAP_CSV_COLUMNS = (
    "kind",
    "text",
    "system",
    "code",
    "hook_calls",
    "patients",
    "first_seen",
    "last_seen",
    "example_scenario",
    "close_in",
    "close_with",
)


def gaps_csv(report: GapReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(GAP_CSV_COLUMNS)
    for e in report.entries:
        writer.writerow(
            [
                e.kind,
                e.text,
                e.system or "",
                e.code or "",
                e.hookCalls,
                e.patients,
                _iso(e.firstSeen),
                _iso(e.lastSeen),
                e.exampleScenario or "",
                e.closeIn,
                e.closeWith,
            ]
        )
    return out.getvalue()


def gaps_table(report: GapReport) -> str:
    lines = [
        f"Vocabulary gaps met for at least {report.minPatients} patients since "
        f"{_iso(report.since)} (retention {report.retentionDays} days): {len(report.entries)}",
        "",
    ]
    for e in report.entries:
        code = f" [{e.system} {e.code}]" if e.code else ""
        lines.append(f"{e.kind}: {e.text}{code}")
        lines.append(
            f"  {e.hookCalls} hook calls, {e.patients} patients, first {_iso(e.firstSeen)}, "
            f"last {_iso(e.lastSeen)}"
            + (f", e.g. {e.exampleScenario}" if e.exampleScenario else "")
        )
        lines.append(f"  effect: {e.effect}")
        lines.append(f"  close in {e.closeIn}, {e.closeWith}")
    if report.belowThreshold:
        lines += ["", f"{report.belowThreshold} more met for fewer patients (not shown)."]
    return "\n".join(lines)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
