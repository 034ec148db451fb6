"""FHIR date/time reading: offsets honoured, partial values read as their latest instant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from cds_service.fhir.time import Precision, instant_of_text, latest_instant, youngest_age


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


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-05",
        "2026-12-05T10:00:00Z",
        "2026-12-05T10:00:00+02:00",
        "2026-12-05T10:00:00",
        "2026-12",
        "2026",
    ],
)
def test_a_date_as_text_reads_as_its_parsed_value(text: str) -> None:
    """Raw text (screened before validation) and the validated value denote the same interval."""
    parsed: object = (
        datetime.fromisoformat(text.replace("Z", "+00:00"))
        if "T" in text
        else date.fromisoformat(text)
        if text.count("-") == 2
        else text
    )
    assert instant_of_text(text) == latest_instant(parsed)


@pytest.mark.parametrize("text", ["garbage", "2026-13-01", "9999-12-31", "2026-12-05T25:00"])
def test_text_that_is_no_date(text: str) -> None:
    assert instant_of_text(text) is None
