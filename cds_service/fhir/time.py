"""FHIR dates and times turned into instants, conservatively.

A FHIR dateTime may be a full instant with a zone offset, a date, a year-month or a year. A value
without a time is read as the *latest* instant it can denote anywhere on Earth (the end of that day,
month or year at UTC-12). So "hours since" a date-only procedure is a lower bound: a puncture recorded
only as a date counts as acute until it is over 72 hours old however it is read, and the service never
recommends an invasive leak study on a guess. Offsets are always honoured (times are compared in UTC)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

_LATEST_ZONE = timezone(timedelta(hours=-12))


class Precision(StrEnum):
    INSTANT = "instant"
    DATE = "date"
    MONTH = "month"
    YEAR = "year"


@dataclass(frozen=True)
class Instant:
    at: datetime
    precision: Precision

    @property
    def is_exact(self) -> bool:
        return self.precision is Precision.INSTANT


def latest_instant(value: Any) -> Instant | None:
    """The latest UTC instant a FHIR date/dateTime value can denote, or None if it is not one (nor
    one that exists in UTC, such as 9999-12-31 or 0001-01-01T00:00:00+05:00)."""
    try:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return Instant(value.replace(tzinfo=_LATEST_ZONE).astimezone(UTC), Precision.DATE)
            return Instant(value.astimezone(UTC), Precision.INSTANT)
        if isinstance(value, date):
            return Instant(_end_of(value.year, value.month, value.day), Precision.DATE)
    except OverflowError:
        return None
    if isinstance(value, str):
        parts = value.split("-")
        try:
            if len(parts) == 2:
                year, month = int(parts[0]), int(parts[1])
                return Instant(
                    _end_of(year, month, calendar.monthrange(year, month)[1]), Precision.MONTH
                )
            if len(parts) == 1:
                return Instant(_end_of(int(parts[0]), 12, 31), Precision.YEAR)
        except (ValueError, OverflowError):
            return None
    return None


def _end_of(year: int, month: int, day: int) -> datetime:
    next_day = datetime(year, month, day, tzinfo=_LATEST_ZONE) + timedelta(days=1)
    return next_day.astimezone(UTC)


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
