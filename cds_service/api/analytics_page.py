"""The analytics page for clinical informaticists (docs/go-live.md, "The analytics page"): per ISO
calendar week of the last eight, the cards shown, withheld by silent mode, accepted and overridden
(a bar chart drawn as inline SVG: no script, no external asset), and per scenario the hook calls,
orders evaluated, cards and the most frequent override reasons, from the would-have-fired report
(/analytics/firing); the silent mode in force and the number of vocabulary gaps to close.
Aggregates only, no patient data; it needs the EHR's JWT like the JSON endpoints it is built from.

Each bar is labelled by its ISO week and that week's Monday: the current week is partial (up to
now), and today's activity is under this week's label."""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import timedelta

import anyio
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from cds_service.api.deps import RuntimeDep
from cds_service.golive.silent import SilentMode
from cds_service.persistence.firing import FiringReport, firing_report, firing_window
from cds_service.persistence.gaps import gap_report

router = APIRouter()
WEEKS = 8
COLOURS = {
    "shown": "#1d6fd6",
    "withheld": "#8a8f98",
    "accepted": "#1b7a3a",
    "overridden": "#c62828",
}
FIELDS = {
    "shown": "cardsShown",
    "withheld": "cardsWithheld",
    "accepted": "accepted",
    "overridden": "overridden",
}


def _chart(report: FiringReport) -> str:
    weeks = report.periods
    peak = max([1] + [getattr(p, FIELDS[k]) for p in weeks for k in COLOURS])
    bar, gap, height = 12, 30, 160
    step = len(COLOURS) * bar + gap
    width = len(weeks) * step + 40
    parts = [
        f'<svg role="img" aria-label="Cards per ISO week" width="{width}" height="{height + 56}">'
    ]
    for i, week in enumerate(weeks):
        x0 = 30 + i * step
        label = f"{week.period}{' (partial)' if week.partial else ''}"
        for j, (key, colour) in enumerate(COLOURS.items()):
            value = getattr(week, FIELDS[key])
            h = round(height * value / peak)
            parts.append(
                f'<rect class="bar {key}" x="{x0 + j * bar}" y="{height - h + 10}" '
                f'width="{bar - 1}" height="{h}" fill="{colour}">'
                f"<title>{html.escape(label)}: {value} {key}</title></rect>"
            )
        parts.append(
            f'<text x="{x0}" y="{height + 28}" font-size="10">{html.escape(week.period[5:])}</text>'
            f'<text x="{x0}" y="{height + 42}" font-size="10">'
            f"{week.start.strftime('%d %b')}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _per_scenario(report: FiringReport) -> str:
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    reasons: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in report.rows:
        for name in (
            "hookCalls",
            "ordersEvaluated",
            "cardsShown",
            "cardsWithheld",
            "accepted",
            "overridden",
        ):
            totals[row.scenario][name] += getattr(row, name)
        for reason in row.overrideReasons:
            reasons[row.scenario][reason.display or reason.code or "no reason"] += reason.overridden
    rows = []
    for scenario, t in totals.items():
        top = sorted(reasons[scenario].items(), key=lambda item: (-item[1], item[0]))[:3]
        listed = ", ".join(f"{html.escape(name)} ({n})" for name, n in top)
        rows.append(
            f"<tr><td>{html.escape(scenario)}</td><td>{t['hookCalls']}</td>"
            f"<td>{t['ordersEvaluated']}</td><td>{t['cardsShown']}</td>"
            f"<td>{t['cardsWithheld']}</td><td>{t['accepted']}</td><td>{t['overridden']}</td>"
            f"<td>{listed or '-'}</td></tr>"
        )
    return (
        "<table><tr><th>Scenario</th><th>Hook calls</th><th>Orders evaluated</th><th>Shown</th>"
        "<th>Withheld (silent)</th><th>Accepted</th><th>Overridden</th>"
        f"<th>Top override reasons</th></tr>{''.join(rows)}</table>"
    )


def render(report: FiringReport, silent: SilentMode, gaps: int, min_patients: int) -> str:
    legend = " ".join(f'<span style="color:{c}">■</span> {k}' for k, c in COLOURS.items())
    named = ", ".join(sorted(silent.scenarios)) or "no scenario"
    quiet = "every scenario" if silent.all else named
    system_actions = "withheld" if silent.system_actions else "returned"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        "<title>Analytics</title><style>body{font:15px/1.5 system-ui,sans-serif;"
        "margin:1rem auto;max-width:64rem;padding:0 1rem}table{border-collapse:collapse;width:100%}"
        "td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left}</style></head><body>"
        f"<h1>Cards shown and withheld, last {WEEKS} ISO weeks</h1>"
        f"<p>Silent mode: cards withheld for {html.escape(quiet)}; system actions "
        f"{system_actions}.</p><p>{legend}</p>{_chart(report)}"
        "<p>Each bar group is an ISO calendar week (Monday to Sunday, UTC), labelled by its week "
        "number and Monday; the current week runs up to now. Accepted and overridden count the "
        "clinicians' answers to the cards shown that week.</p>"
        f"<h2>Per scenario</h2>{_per_scenario(report)}"
        f"<p>Vocabulary gaps met for at least {min_patients} patients: {gaps} "
        "(/analytics/vocabulary-gaps). The same numbers: /analytics/firing (JSON, or CSV with "
        "format=csv), /analytics/overrides. Calls of the replay harness and the demo page and "
        "flagged feedback (unknown cards, another service's, reasons not offered) are not "
        "counted.</p></body></html>"
    )


@router.get("/analytics", response_class=HTMLResponse, summary="Analytics page")
async def analytics_page(runtime: RuntimeDep) -> HTMLResponse:
    now = runtime.clock()
    end = now + timedelta(seconds=1)  # windows are [since, until): include now
    since, until = firing_window(None, end, "week", now)
    await anyio.to_thread.run_sync(runtime.audit.flush)  # this process's latest cards count too
    engine = runtime.store.engine
    report = await anyio.to_thread.run_sync(firing_report, engine, since, until, "week")
    settings = runtime.settings
    gaps = await anyio.to_thread.run_sync(
        gap_report, engine, now, settings.gap_min_patients, settings.gap_retention_days
    )
    return HTMLResponse(
        render(report, runtime.silent, len(gaps.entries), settings.gap_min_patients)
    )
