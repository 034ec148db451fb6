"""The would-have-fired report (SPEC §6): per scenario, calendar period (UTC day or ISO week) and
knowledge version, the hook calls, imaging orders evaluated, cards shown, cards withheld by silent
mode, and the clinicians' answers to the cards shown (accepted, overridden by reason).

Everything is counted from the audit rows (one per evaluated draft order, carrying its cards shown
and withheld) and the feedback on their cards, in the period the card was shown. Calls marked as
harness or demo traffic (cds_service/golive/traffic.py) and flagged feedback are not counted. A
hook call's rows share one instant, so counts per day add up exactly to counts per week.

The queries group by UTC day in the database, reading only the covering index `ix_audit_report`;
days are folded into ISO weeks here."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Engine, func, select

from cds_service.knowledge import Scenario
from cds_service.persistence.schema import audit, audit_card, feedback
from cds_service.text_table import text_table

Period = Literal["day", "week"]
PERIOD_KINDS = {
    "day": "calendar day (UTC)",
    "week": "ISO week (Monday to Sunday, UTC)",
}
DEFAULT_PERIODS = {"day": 14, "week": 8}  # the default window: the last 14 days or 8 ISO weeks
MAX_PERIODS = 800  # about two years of days: a longer window is asked by week
UNKNOWN_KNOWLEDGE = "unknown"  # audit rows written before knowledge versions were recorded
NO_SCENARIO = "none"  # an evaluated order no scenario applied to (the audit's `none`)


class ReasonCount(BaseModel):
    code: str | None = None  # None: overridden without a reason
    display: str | None = None
    overridden: int


class Counts(BaseModel):
    hookCalls: int = 0
    ordersEvaluated: int = 0
    cardsShown: int = 0
    cardsWithheld: int = 0
    accepted: int = 0
    overridden: int = 0


class FiringRow(Counts):
    period: str
    scenario: str
    knowledge: str
    overrideReasons: list[ReasonCount] = []


class PeriodTotal(Counts):
    period: str
    start: datetime
    end: datetime
    partial: bool = False  # the window cuts the calendar period


class FiringReport(BaseModel):
    since: datetime
    until: datetime
    by: Period
    periodKind: str
    periods: list[PeriodTotal]
    rows: list[FiringRow]
    note: str = (
        "Outcomes count in the period their card was shown. Calls marked as replay-harness or demo "
        "traffic and flagged feedback are not counted."
    )


@dataclass(frozen=True)
class CalendarPeriod:
    label: str
    start: datetime
    end: datetime


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def period_of(day: date, by: Period) -> CalendarPeriod:
    """The calendar period holding `day`: the day itself, or its ISO week (labelled 2026-W48)."""
    if by == "day":
        return CalendarPeriod(day.isoformat(), _midnight(day), _midnight(day + timedelta(days=1)))
    monday = day - timedelta(days=day.weekday())
    year, week, _ = day.isocalendar()
    return CalendarPeriod(
        f"{year}-W{week:02d}", _midnight(monday), _midnight(monday + timedelta(days=7))
    )


def calendar_periods(since: datetime, until: datetime, by: Period) -> list[CalendarPeriod]:
    """Every calendar period [since, until) touches, in order."""
    found: list[CalendarPeriod] = []
    day = since.astimezone(UTC).date()
    while _midnight(day) < until:
        period = period_of(day, by)
        found.append(period)
        day = period.end.date()
        if len(found) > MAX_PERIODS:
            raise ValueError(
                f"the window holds more than {MAX_PERIODS} periods: ask by week, or a shorter window"
            )
    return found


def firing_window(
    since: datetime | None, until: datetime | None, by: Period, now: datetime
) -> tuple[datetime, datetime]:
    """[since, until) in UTC. Defaults: until now; since the start of the calendar period
    DEFAULT_PERIODS[by] - 1 periods before the one holding until (the last 8 ISO weeks, the last 14
    days). Instants need a time zone offset and since must come before until."""
    for value in (since, until):
        if value is not None and value.tzinfo is None:
            raise ValueError("since and until need a time zone offset, e.g. 2026-11-01T00:00:00Z")
    try:
        end = (until or now).astimezone(UTC)
        if since is None:
            last = period_of((end - timedelta(microseconds=1)).date(), by).start
            step = timedelta(days=1 if by == "day" else 7)
            start = last - step * (DEFAULT_PERIODS[by] - 1)
        else:
            start = since.astimezone(UTC)
        if start >= end:
            raise ValueError("since must be before until")
        calendar_periods(start, end, by)  # a window with too many periods is refused here
    except OverflowError:
        raise ValueError("since and until must lie between the years 1 and 9999") from None
    return start, end


def _day(engine: Engine) -> ColumnElement[str]:
    """The UTC calendar day of an audit row, as YYYY-MM-DD, in the database's own dialect."""
    if engine.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", audit.c.evaluated_at), "YYYY-MM-DD")
    # SQLite keeps the instant in UTC as text, 'YYYY-MM-DD HH:MM:SS.ffffff'.
    return func.substr(audit.c.evaluated_at, 1, 10)


def firing_report(engine: Engine, since: datetime, until: datetime, by: Period) -> FiringReport:
    day = _day(engine).label("day")
    knowledge = func.coalesce(audit.c.knowledge, UNKNOWN_KNOWLEDGE).label("knowledge")
    in_window = (
        (audit.c.evaluated_at >= since) & (audit.c.evaluated_at < until) & audit.c.traffic.is_(None)
    )
    audit_query = (
        select(
            day,
            audit.c.scenario,
            knowledge,
            func.count(func.distinct(audit.c.hook_instance)),
            func.count(),
            func.sum(audit.c.cards_shown),
            func.sum(audit.c.cards_withheld),
        )
        .where(in_window)
        .group_by(day, audit.c.scenario, knowledge)
    )
    calls_query = (  # a call evaluating orders of two scenarios is one call in the period's total
        select(day, func.count(func.distinct(audit.c.hook_instance))).where(in_window).group_by(day)
    )
    cards = func.count(func.distinct(feedback.c.card_uuid))
    # The answers are few beside the audit rows: read them first, then their cards' rows by key.
    # SQLite's planner would rather range-scan the audit index over the window (10x slower on a
    # million rows, with or without ANALYZE); a window on an expression is not an index range.
    evaluated: ColumnElement[datetime] = audit.c.evaluated_at
    if engine.dialect.name == "sqlite":
        evaluated = func.coalesce(audit.c.evaluated_at, audit.c.evaluated_at)
    outcome_query = (
        select(
            day,
            audit.c.scenario,
            knowledge,
            feedback.c.outcome,
            feedback.c.override_reason_code,
            func.max(feedback.c.override_reason_display),
            cards,
        )
        .select_from(
            feedback.join(audit_card, audit_card.c.card_uuid == feedback.c.card_uuid).join(
                audit, audit.c.id == audit_card.c.audit_id
            )
        )
        .where(
            evaluated >= since,
            evaluated < until,
            audit.c.traffic.is_(None),
            feedback.c.flag.is_(None),
        )
        .group_by(
            day, audit.c.scenario, knowledge, feedback.c.outcome, feedback.c.override_reason_code
        )
    )
    periods = calendar_periods(since, until, by)
    label_of: dict[str, str] = {}

    def label(day_text: str) -> str:
        if day_text not in label_of:
            label_of[day_text] = period_of(date.fromisoformat(day_text), by).label
        return label_of[day_text]

    rows: dict[tuple[str, str, str], FiringRow] = {}

    def row(day_text: str, scenario: str, version: str) -> FiringRow:
        key = (label(day_text), scenario, version)
        if key not in rows:
            rows[key] = FiringRow(period=key[0], scenario=scenario, knowledge=version)
        return rows[key]

    calls: dict[str, int] = defaultdict(int)
    reasons: dict[tuple[str, str, str], dict[str | None, ReasonCount]] = defaultdict(dict)
    with engine.connect() as connection:
        for day_text, scenario, version, calls_n, orders, shown, withheld in connection.execute(
            audit_query
        ):
            r = row(day_text, scenario, version)
            r.hookCalls += int(calls_n)
            r.ordersEvaluated += int(orders)
            r.cardsShown += int(shown or 0)
            r.cardsWithheld += int(withheld or 0)
        for day_text, calls_n in connection.execute(calls_query):
            calls[label(day_text)] += int(calls_n)
        for day_text, scenario, version, outcome, code, display, count in connection.execute(
            outcome_query
        ):
            r = row(day_text, scenario, version)
            if outcome == "accepted":
                r.accepted += int(count)
            elif outcome == "overridden":
                r.overridden += int(count)
                by_code = reasons[(r.period, scenario, version)]
                known = by_code.setdefault(code, ReasonCount(code=code, overridden=0))
                known.overridden += int(count)
                known.display = known.display or display
    for key, by_code in reasons.items():
        rows[key].overrideReasons = sorted(
            by_code.values(), key=lambda r: (-r.overridden, r.code or "~")
        )
    order = {period.label: i for i, period in enumerate(periods)}
    scenario_order = {s.value: i for i, s in enumerate(Scenario)}
    ordered = sorted(
        rows.values(),
        key=lambda r: (
            order.get(r.period, len(order)),
            scenario_order.get(r.scenario, len(scenario_order)),
            r.scenario,
            r.knowledge,
        ),
    )
    totals = []
    for period in periods:
        in_period = [r for r in ordered if r.period == period.label]
        totals.append(
            PeriodTotal(
                period=period.label,
                start=period.start,
                end=period.end,
                partial=period.start < since or period.end > until,
                hookCalls=calls.get(period.label, 0),
                **_sums(in_period),
            )
        )
    return FiringReport(
        since=since,
        until=until,
        by=by,
        periodKind=PERIOD_KINDS[by],
        periods=totals,
        rows=ordered,
    )


def _sums(rows: Iterable[Counts]) -> dict[str, int]:
    fields = ("ordersEvaluated", "cardsShown", "cardsWithheld", "accepted", "overridden")
    listed = list(rows)
    return {name: sum(getattr(r, name) for r in listed) for name in fields}


CSV_COLUMNS = (
    "period",
    "period_kind",
    "scenario",
    "knowledge",
    "hook_calls",
    "orders_evaluated",
    "cards_shown",
    "cards_withheld",
    "accepted",
    "overridden",
    "override_reasons",
)


def _reasons(row: FiringRow) -> str:
    return "; ".join(f"{r.code or '(no reason)'}: {r.overridden}" for r in row.overrideReasons)


def as_csv(report: FiringReport) -> str:
    """One line per scenario, period and knowledge version (RFC 4180, with a header)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in report.rows:
        writer.writerow(
            [
                r.period,
                report.periodKind,
                r.scenario,
                r.knowledge,
                r.hookCalls,
                r.ordersEvaluated,
                r.cardsShown,
                r.cardsWithheld,
                r.accepted,
                r.overridden,
                _reasons(r),
            ]
        )
    return out.getvalue()


def as_table(report: FiringReport) -> str:
    """The report as a plain-text table for the command line."""
    headers = [
        "period",
        "scenario",
        "knowledge",
        "calls",
        "orders",
        "shown",
        "withheld",
        "accepted",
        "overridden",
        "override reasons",
    ]
    body: list[list[Any]] = [
        [
            r.period,
            r.scenario,
            r.knowledge,
            r.hookCalls,
            r.ordersEvaluated,
            r.cardsShown,
            r.cardsWithheld,
            r.accepted,
            r.overridden,
            _reasons(r) or "-",
        ]
        for r in report.rows
    ]
    body += [
        [
            p.period + (" (partial)" if p.partial else ""),
            "total",
            "",
            p.hookCalls,
            p.ordersEvaluated,
            p.cardsShown,
            p.cardsWithheld,
            p.accepted,
            p.overridden,
            "",
        ]
        for p in report.periods
    ]
    table = text_table(headers, body, numeric=range(3, 9))
    title = (
        f"Would have fired, per {report.periodKind}, from {_iso(report.since)} to "
        f"{_iso(report.until)}"
    )
    return "\n".join([title, "", table, "", report.note])


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
