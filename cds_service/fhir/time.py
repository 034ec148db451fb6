"""FHIR dates and times turned into instants, conservatively.

A FHIR dateTime may be a full instant with a zone offset, a date, a year-month or a year. A value
without a time is the interval of instants it can denote anywhere on Earth: from the start of that day,
month or year at UTC+14 (`earliest`) to its end at UTC-12 (`at`, the latest). "Hours since" from `at`
is a lower bound; from `earliest`, an upper bound. SPEC §2 places such a time by that interval: acute
only when the whole interval is within the acute window, beyond it only when the whole interval is
beyond, uncertain otherwise; so the service never recommends an invasive leak study on a guess. A
dateTime without an offset is known to ±14 h the same way. Offsets are always honoured (times are
compared in UTC)."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

_LATEST_ZONE = timezone(timedelta(hours=-12))
_EARLIEST_ZONE = timezone(timedelta(hours=14))


class Precision(StrEnum):
    INSTANT = "instant"
    DATE = "date"
    MONTH = "month"
    YEAR = "year"


@dataclass(frozen=True)
class Instant:
    at: datetime  # the latest instant the value can denote
    precision: Precision
    earliest: datetime | None = None  # the earliest one; None: the same as `at` (an exact instant)

    @property
    def is_exact(self) -> bool:
        return self.precision is Precision.INSTANT

    @property
    def first(self) -> datetime:
        return self.at if self.earliest is None else self.earliest


def latest_instant(value: Any) -> Instant | None:
    """The latest UTC instant a FHIR date/dateTime value can denote, or None if it is not one (nor
    one that exists in UTC, such as 9999-12-31 or 0001-01-01T00:00:00+05:00)."""
    try:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return Instant(
                    value.replace(tzinfo=_LATEST_ZONE).astimezone(UTC),
                    Precision.DATE,
                    value.replace(tzinfo=_EARLIEST_ZONE).astimezone(UTC),
                )
            return Instant(value.astimezone(UTC), Precision.INSTANT)
        if isinstance(value, date):
            return Instant(
                _end_of(value.year, value.month, value.day),
                Precision.DATE,
                _start_of(value.year, value.month, value.day),
            )
    except OverflowError:
        return None
    if isinstance(value, str):
        parts = value.split("-")
        try:
            if len(parts) == 2:
                year, month = int(parts[0]), int(parts[1])
                return Instant(
                    _end_of(year, month, calendar.monthrange(year, month)[1]),
                    Precision.MONTH,
                    _start_of(year, month, 1),
                )
            if len(parts) == 1:
                year = int(parts[0])
                return Instant(_end_of(year, 12, 31), Precision.YEAR, _start_of(year, 1, 1))
        except (ValueError, OverflowError):
            return None
    return None


def _end_of(year: int, month: int, day: int) -> datetime:
    next_day = datetime(year, month, day, tzinfo=_LATEST_ZONE) + timedelta(days=1)
    return next_day.astimezone(UTC)


_NAIVE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


def naive_instant(value: Any) -> Instant | None:
    """A dateTime written without its offset ("2026-12-05T10:30:00", invalid FHIR, sent by some
    EHRs): the interval it can denote, known to ±14 h (SPEC §2); None for anything else."""
    if not isinstance(value, str) or not _NAIVE.fullmatch(value.strip()):
        return None
    return instant_of_text(value)


def instant_of_text(value: str) -> Instant | None:
    """What a FHIR date or dateTime written as text can denote (a year, a month, a date, a time with
    or without its offset), read as latest_instant reads the parsed value; None if it is none."""
    text = value.strip()
    try:
        if "T" in text:
            return latest_instant(datetime.fromisoformat(text.replace("Z", "+00:00")))
        if text.count("-") == 2:
            return latest_instant(date.fromisoformat(text))
    except ValueError:
        return None
    return latest_instant(text)


def surely_before(value: Any, oldest: datetime) -> bool:
    """A FHIR date or dateTime written as text that plainly denotes nothing later than just before
    `oldest`: the screen that lets a reader skip an old row before validating it. Anything that does
    not parse plainly is False (left to the validated reading, which may skip it as invalid)."""
    if not isinstance(value, str):
        return False
    try:  # most rows are instants with their offset: compared as they are, no conversion
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if instant.tzinfo is not None:
            # Year 1 may have no UTC equivalent: latest_instant reads no time at all there.
            return instant.year > 1 and instant < oldest
    except ValueError:
        return False
    at = instant_of_text(value)  # a date, or a time without offset: its interval's latest instant
    return at is not None and at.at < oldest


def _start_of(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=_EARLIEST_ZONE).astimezone(UTC)


def hours_between(earlier: datetime, later: datetime) -> float:
    return (later - earlier).total_seconds() / 3600.0


def youngest_age(birth_date: Any, on: datetime) -> int | None:
    """Age in whole years on `on`, from the latest birthday the value allows (the end of the month or
    year for partial dates) and the earliest calendar day `on` can be anywhere: the youngest age the
    data admits. The service stays silent for children, so an ambiguous age errs towards silence."""
    if isinstance(birth_date, datetime):
        birth_date = birth_date.date()
    if isinstance(birth_date, date):
        birthday = birth_date
    else:
        born = latest_instant(birth_date)
        if born is None:
            return None
        birthday = born.at.astimezone(_LATEST_ZONE).date() - timedelta(days=1)
    today = on.astimezone(_LATEST_ZONE).date()
    years = today.year - birthday.year
    if (today.month, today.day) < (birthday.month, birthday.day):
        years -= 1
    return years
