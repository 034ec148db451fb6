"""FHIR date/time reading: offsets honoured, partial values read as their latest instant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from cds_service.fhir.time import Precision, latest_instant, youngest_age


@pytest.mark.parametrize(
    ("value", "expected", "precision"),
    [
        (
            datetime(2026, 11, 20, 10, tzinfo=timezone(timedelta(hours=-5))),
            datetime(2026, 11, 20, 15, tzinfo=UTC),
            Precision.INSTANT,
        ),
        (date(2026, 11, 20), datetime(2026, 11, 21, 12, tzinfo=UTC), Precision.DATE),
        ("2026-11", datetime(2026, 12, 1, 12, tzinfo=UTC), Precision.MONTH),
        ("2026-02", datetime(2026, 3, 1, 12, tzinfo=UTC), Precision.MONTH),
        ("2026", datetime(2027, 1, 1, 12, tzinfo=UTC), Precision.YEAR),
        (datetime(2026, 11, 20, 10), datetime(2026, 11, 20, 22, tzinfo=UTC), Precision.DATE),
    ],
)
def test_latest_instant(value: object, expected: datetime, precision: Precision) -> None:
    instant = latest_instant(value)
    assert instant is not None
    assert instant.at == expected
    assert instant.precision is precision


@pytest.mark.parametrize("value", [None, "garbage", "20-x", 12])
def test_not_a_date(value: object) -> None:
    assert latest_instant(value) is None


def test_youngest_age() -> None:
    on = datetime(2026, 11, 24, 15, tzinfo=UTC)
    assert youngest_age(date(2008, 11, 24), on) == 18
    assert youngest_age(date(2008, 11, 25), on) == 17
    assert youngest_age("2008-11", on) == 17
    assert youngest_age("2007", on) == 18
    assert youngest_age(None, on) is None
