"""Scenario fixtures: full CDS Hooks requests whose times are written relative to "now", so the same
file is a valid, current request whenever it is used (tests, CLI replay, benchmark, demo page).

A string value that is exactly one token is replaced:
- `{{now}}`, `{{now-48h}}`, `{{now-3d2h30m}}`: an instant in UTC (`...Z`);
- `{{now-74h@-05:00}}`: the same instant written with that zone offset;
- `{{date:now-3d}}`: the calendar date (UTC) of that instant, as a FHIR date-only value;
- units: y (calendar years: now-34y is the same day 34 years ago, Feb 29 becoming Feb 28), d, h, m.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

_TOKEN = re.compile(
    r"^\{\{(?P<date>date:)?now(?P<offset>(?:[+-](?:\d+(?:\.\d+)?[ydhm])+)*)(?:@(?P<zone>[+-]\d\d:\d\d))?\}\}$"
)
_PART = re.compile(r"([+-])((?:\d+(?:\.\d+)?[ydhm])+)")
_UNIT = re.compile(r"(\d+(?:\.\d+)?)([ydhm])")
_UNIT_HOURS = {"d": 24.0, "h": 1.0, "m": 1 / 60}

# fixtures/ of a source checkout; else CDS_FIXTURES_DIR, else ./fixtures (an installed package).
_CHECKOUT_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FIXTURES_DIR = (
    _CHECKOUT_FIXTURES
    if _CHECKOUT_FIXTURES.is_dir()
    else Path(os.environ.get("CDS_FIXTURES_DIR", Path.cwd() / "fixtures"))
)


def _shift(now: datetime, text: str) -> datetime:
    """`now` moved by an offset such as -34y or -3d2h30m: years in calendar years (so a story's
    age is the age the service computes), the rest in hours."""
    years, hours = 0, 0.0
    for sign, body in _PART.findall(text):
        direction = 1 if sign == "+" else -1
        for number, unit in _UNIT.findall(body):
            if unit == "y":
                years += direction * int(float(number))
            else:
                hours += direction * float(number) * _UNIT_HOURS[unit]
    year = now.year + years
    try:
        moved = now.replace(year=year)
    except ValueError:  # 29 February in a year without one
        moved = now.replace(year=year, day=28)
    return moved + timedelta(hours=hours)


def render_time_token(value: str, now: datetime) -> str:
    match = _TOKEN.match(value)
    if match is None:
        return value
    instant = _shift(now.astimezone(UTC), match.group("offset") or "")
    if match.group("date"):
        return instant.date().isoformat()
    zone = match.group("zone")
    if zone:
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        return instant.astimezone(tz).isoformat(timespec="seconds")
    return instant.isoformat(timespec="seconds").replace("+00:00", "Z")


def render(value: Any, now: datetime) -> Any:
    """A deep copy of `value` with every time token rendered against `now`."""
    if isinstance(value, str):
        return render_time_token(value, now) if value.startswith("{{") else value
    if isinstance(value, list):
        return [render(v, now) for v in value]
    if isinstance(value, dict):
        return {k: render(v, now) for k, v in value.items()}
    return value


class FixtureError(ValueError):
    """A file that cannot be read as a request or a fixture: one line naming the file and why."""


def read_json(path: Path) -> Any:
    """A JSON file's content, or a FixtureError saying in one line what is wrong with the file."""
    if not path.exists():
        raise FixtureError(f"{path}: no such file")
    if path.is_dir():
        raise FixtureError(f"{path}: is a folder, not a file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FixtureError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FixtureError(f"{path}: not a text file (not UTF-8), so not JSON") from None
    if not text.strip():
        raise FixtureError(f"{path}: the file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FixtureError(
            f"{path}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None


def fixture_paths(folder: Path = FIXTURES_DIR) -> list[Path]:
    return sorted(folder.glob("*.json"))


def load_fixture(path: Path, now: datetime) -> dict[str, Any]:
    """A fixture file (title, story, service, expected, request) with its request rendered."""
    fixture = read_json(path)
    if not isinstance(fixture, dict):
        raise FixtureError(f"{path}: not a fixture (a JSON object with request, service, expected)")
    for key, kind, words in (
        ("request", dict, "an object"),
        ("service", str, "a service id"),
        ("expected", dict, "an object"),
    ):
        if not isinstance(fixture.get(key), kind):
            raise FixtureError(f"{path}: not a fixture: {key!r} is missing or not {words}")
    fixture["request"] = render(fixture["request"], now)
    fixture.setdefault("name", path.stem)
    return fixture
