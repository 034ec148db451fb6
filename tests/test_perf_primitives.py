"""The views' date, dateTime and instant (cds_service/fhir/primitives.py) take a shorter way through
fhir_core's validators for full dates and full instants: on every kind of value they give what
fhir_core's own types give, the same value of the same type or the same errors."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from fhir_core import types
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from cds_service.fhir import primitives

PAIRS = [
    (TypeAdapter(types.DateType), TypeAdapter(primitives.DateType)),
    (TypeAdapter(types.DateTimeType), TypeAdapter(primitives.DateTimeType)),
    (TypeAdapter(types.InstantType), TypeAdapter(primitives.InstantType)),
]


def _outcome(adapter: TypeAdapter[Any], value: Any) -> tuple[str, Any]:
    try:
        found = adapter.validate_python(value)
    except ValidationError as error:
        return "error", error.errors(include_url=False, include_context=False)
    tz = found.utcoffset() if isinstance(found, datetime.datetime) else None
    return "value", (type(found), found, tz, repr(found))


def _same(value: Any) -> None:
    for theirs, ours in PAIRS:
        assert _outcome(ours, value) == _outcome(theirs, value), value


def _two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:02d}")


YEARS = st.sampled_from(["2026", "1992", "0001", "9999", "0000", "1900", "2000", "2024", "20260"])
MONTHS = st.one_of(_two(0, 13), st.sampled_from(["1", "012", "ab"]))
DAYS = st.one_of(_two(0, 32), st.sampled_from(["1", "29"]))
HOURS = st.one_of(_two(0, 25), st.sampled_from(["1", "2"]))
MINUTES = st.one_of(_two(0, 61), st.sampled_from(["5"]))
SECONDS = st.one_of(_two(0, 61), st.sampled_from(["60", "59", "6"]))
FRACTIONS = st.sampled_from(["", ".1", ".123", ".123456", ".1234567", ".", ".x"])
ZONES = st.sampled_from(
    ["Z", "+00:00", "-12:00", "+14:00", "+14:01", "+13:59", "-05:30", "", "z", "+0500", "+05", " Z"]
)
SEPARATORS = st.sampled_from(["T", "t", " ", "TT"])
EDGES = st.sampled_from(["", " ", "\n", "x"])


@st.composite
def texts(draw: st.DrawFn) -> str:
    year, month, day = draw(YEARS), draw(MONTHS), draw(DAYS)
    shape = draw(st.integers(0, 4))
    if shape == 0:
        text = year
    elif shape == 1:
        text = f"{year}-{month}"
    elif shape == 2:
        text = f"{year}-{month}-{day}"
    else:
        text = (
            f"{year}-{month}-{day}{draw(SEPARATORS)}{draw(HOURS)}:{draw(MINUTES)}"
            f":{draw(SECONDS)}{draw(FRACTIONS)}{draw(ZONES)}"
        )
    return draw(EDGES) + text + draw(EDGES) if draw(st.booleans()) else text


FIXED = [
    "2026-12-07T02:27:38Z",
    "2026-12-07T02:27:38.123+05:30",
    "2016-12-31T23:59:60Z",
    "2016-12-31T23:59:60.5+01:00",
    "2015-06-30T23:59:60-14:00",
    "2026-02-30T10:00:00Z",
    "2026-12-07T24:00:00Z",
    "2026-12-07T02:27:38",
    "2026-12-07",
    "2024-02-29",
    "2023-02-29",
    "2026-12",
    "2026",
    "2026-13",
    "0000-01-01",
    "",
    "2026-12-07T02:27:38Z\n",
    "２０２６-12-07",
    1_700_000_000,
    1_700_000_000.5,
    0,
    -1,
    True,
    None,
    [],
    {},
    datetime.datetime(2026, 12, 7, 2, 27, tzinfo=datetime.UTC),
    datetime.datetime(2026, 12, 7, 2, 27),
    datetime.date(2026, 12, 7),
]


@pytest.mark.parametrize("value", FIXED, ids=[repr(v) for v in FIXED])
def test_fixed_values_read_as_fhir_core_reads_them(value: Any) -> None:
    _same(value)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None)
@given(texts())
@example("2026-12-07T02:27:38+14:00")
def test_generated_texts_read_as_fhir_core_reads_them(text: str) -> None:
    _same(text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789-T:.+Z ", max_size=30))
def test_any_text_of_date_characters_reads_as_fhir_core_reads_it(text: str) -> None:
    _same(text)
