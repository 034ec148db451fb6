"""Override analytics: per scenario and per override reason, how many cards were shown, accepted and
overridden in a time window. Cards shown are counted by evaluation time (audit rows), outcomes by the
clinician's outcome timestamp; each card counts once per outcome however often its feedback was sent.
Feedback whose card has no audit row (written before auditing, or its audit write failed) is shown
under the scenario `unknown`. Calls marked as replay-harness or demo traffic are not counted."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import Engine, func, select

from cds_service.knowledge import Scenario
from cds_service.persistence.store import audit, audit_card, feedback
from cds_service.text_table import text_table

DEFAULT_WINDOW = timedelta(days=30)
UNKNOWN_SCENARIO = "unknown"


class ReasonCount(BaseModel):
    code: str | None = None  # None: overridden without a reason
    display: str | None = None
    overridden: int


class ScenarioSummary(BaseModel):
    scenario: str
    shown: int = 0
    accepted: int = 0
    overridden: int = 0
    overrideReasons: list[ReasonCount] = []


class OverrideSummary(BaseModel):
    since: datetime
    until: datetime
    scenarios: list[ScenarioSummary]
    total: ScenarioSummary


def window(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """[since, until) in UTC; defaults: until now, since 30 days before until. Instants must carry a
    time zone offset, and since must come before until."""
    for value in (since, until):
        if value is not None and value.tzinfo is None:
            raise ValueError("since and until need a time zone offset, e.g. 2026-11-01T00:00:00Z")
    end = (until or now).astimezone(UTC)
    start = (since or end - DEFAULT_WINDOW).astimezone(UTC)
    if start >= end:
        raise ValueError("since must be before until")
    return start, end


def override_summary(engine: Engine, since: datetime, until: datetime) -> OverrideSummary:
    scenario = func.coalesce(audit.c.scenario, UNKNOWN_SCENARIO).label("scenario")
    with_scenario = feedback.outerjoin(
        audit_card, audit_card.c.card_uuid == feedback.c.card_uuid
    ).outerjoin(audit, audit.c.id == audit_card.c.audit_id)
    # Flagged feedback (unknown card, another service's, a reason not offered) is stored but not
    # counted here (SPEC §4).
    # Cards of marked replay-harness or demo calls (audit `traffic`) are not counted either.
    in_window = (
        (feedback.c.outcome_timestamp >= since)
        & (feedback.c.outcome_timestamp < until)
        & feedback.c.flag.is_(None)
        & audit.c.traffic.is_(None)
    )
    shown_query = (
        select(audit.c.scenario, func.count(audit_card.c.card_uuid))
        .select_from(audit.join(audit_card, audit_card.c.audit_id == audit.c.id))
        .where(
            audit.c.evaluated_at >= since, audit.c.evaluated_at < until, audit.c.traffic.is_(None)
        )
        .group_by(audit.c.scenario)
    )
    cards = func.count(func.distinct(feedback.c.card_uuid))
    outcome_query = (
        select(scenario, feedback.c.outcome, cards)
        .select_from(with_scenario)
        .where(in_window)
        .group_by(scenario, feedback.c.outcome)
    )
    reason_query = (
        select(
            scenario,
            feedback.c.override_reason_code,
            func.max(feedback.c.override_reason_display),
            cards,
        )
        .select_from(with_scenario)
        .where(in_window, feedback.c.outcome == "overridden")
        .group_by(scenario, feedback.c.override_reason_code)
    )
    summaries: dict[str, ScenarioSummary] = defaultdict(lambda: ScenarioSummary(scenario=""))
    with engine.connect() as connection:
        for name, shown in connection.execute(shown_query):
            summaries[name].shown = int(shown)
        for name, outcome, count in connection.execute(outcome_query):
            if outcome == "accepted":
                summaries[name].accepted = int(count)
            elif outcome == "overridden":
                summaries[name].overridden = int(count)
        for name, code, display, count in connection.execute(reason_query):
            summaries[name].overrideReasons.append(
                ReasonCount(code=code, display=display, overridden=int(count))
            )
    for name, summary in summaries.items():
        summary.scenario = name
        summary.overrideReasons.sort(key=lambda r: (-r.overridden, r.code or "~"))
    order = {s.value: i for i, s in enumerate(Scenario)}
    ordered = sorted(
        summaries.values(), key=lambda s: (order.get(s.scenario, len(order)), s.scenario)
    )
    total = ScenarioSummary(
        scenario="total",
        shown=sum(s.shown for s in ordered),
        accepted=sum(s.accepted for s in ordered),
        overridden=sum(s.overridden for s in ordered),
    )
    return OverrideSummary(since=since, until=until, scenarios=ordered, total=total)


def format_table(summary: OverrideSummary) -> str:
    """The summary as a plain-text table, one line per scenario and one per override reason."""
    rows: list[tuple[str, str, str, str, str]] = []
    for s in summary.scenarios:
        rows.append((s.scenario, "(all)", str(s.shown), str(s.accepted), str(s.overridden)))
        for r in s.overrideReasons:
            label = f"{r.code}: {r.display}" if r.code and r.display else r.code or "(no reason)"
            rows.append(("", f"  {label}"[:60], "", "", str(r.overridden)))
    t = summary.total
    rows.append(("total", "", str(t.shown), str(t.accepted), str(t.overridden)))
    header = ("scenario", "override reason", "shown", "accepted", "overridden")
    title = (
        f"Cards shown, accepted and overridden from {_instant(summary.since)} "
        f"to {_instant(summary.until)}"
    )
    return "\n".join([title, "", text_table(header, rows, numeric=(2, 3, 4))])


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
