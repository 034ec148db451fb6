"""A small override analytics page for clinical informaticists: cards shown, accepted and overridden
per week (a bar chart drawn as inline SVG: no script, no external asset) and the most frequent
override reasons per scenario. Aggregates only, no patient data; it needs the EHR's JWT like the
JSON endpoint (/analytics/overrides) it is built from."""

from __future__ import annotations

import html
from datetime import timedelta

import anyio
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from cds_service.api.deps import RuntimeDep
from cds_service.persistence.analytics import OverrideSummary, override_summary

router = APIRouter()
WEEKS = 8
COLOURS = {"shown": "#1d6fd6", "accepted": "#1b7a3a", "overridden": "#c62828"}


def _chart(weeks: list[tuple[str, OverrideSummary]]) -> str:
    peak = max([1] + [getattr(s.total, k) for _, s in weeks for k in COLOURS])
    bar, gap, height = 14, 34, 160
    width = len(weeks) * (3 * bar + gap) + 40
    parts = [f'<svg role="img" aria-label="Cards per week" width="{width}" height="{height + 40}">']
    for i, (label, summary) in enumerate(weeks):
        x0 = 30 + i * (3 * bar + gap)
        for j, (key, colour) in enumerate(COLOURS.items()):
            value = getattr(summary.total, key)
            h = round(height * value / peak)
            parts.append(
                f'<rect class="bar {key}" x="{x0 + j * bar}" y="{height - h + 10}" width="{bar - 1}" '
                f'height="{h}" fill="{colour}"><title>{label}: {value} {key}</title></rect>'
            )
        parts.append(f'<text x="{x0}" y="{height + 30}" font-size="10">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render(weeks: list[tuple[str, OverrideSummary]], overall: OverrideSummary) -> str:
    legend = " ".join(f'<span style="color:{c}">■</span> {k}' for k, c in COLOURS.items())
    rows = []
    for scenario in overall.scenarios:
        reasons = ", ".join(
            f"{html.escape(r.display or r.code or 'no reason')} ({r.overridden})"
            for r in scenario.overrideReasons[:3]
        )
        rows.append(
            f"<tr><td>{html.escape(scenario.scenario)}</td><td>{scenario.shown}</td>"
            f"<td>{scenario.accepted}</td><td>{scenario.overridden}</td><td>{reasons or '-'}</td></tr>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        "<title>Override analytics</title><style>body{font:15px/1.5 system-ui,sans-serif;"
        "margin:1rem auto;max-width:60rem;padding:0 1rem}table{border-collapse:collapse;width:100%}"
        "td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left}</style></head><body>"
        f"<h1>Override analytics, last {WEEKS} weeks</h1><p>{legend}</p>{_chart(weeks)}"
        "<h2>Per scenario</h2><table><tr><th>Scenario</th><th>Shown</th><th>Accepted</th>"
        f"<th>Overridden</th><th>Top override reasons</th></tr>{''.join(rows)}</table>"
        "<p>Flagged feedback (unknown cards, another service's, reasons not offered) is not "
        "counted. JSON: /analytics/overrides.</p></body></html>"
    )


@router.get("/analytics", response_class=HTMLResponse, summary="Override analytics page")
async def analytics_page(runtime: RuntimeDep) -> HTMLResponse:
    end = runtime.clock() + timedelta(seconds=1)  # windows are [since, until): include now
    engine = runtime.store.engine
    await anyio.to_thread.run_sync(runtime.audit.flush)  # this process's latest cards count too
    weeks = []
    for i in reversed(range(WEEKS)):
        until = end - timedelta(weeks=i)
        since = until - timedelta(weeks=1)
        summary = await anyio.to_thread.run_sync(override_summary, engine, since, until)
        weeks.append((since.strftime("%d %b"), summary))
    overall = await anyio.to_thread.run_sync(
        override_summary, engine, end - timedelta(weeks=WEEKS), end
    )
    return HTMLResponse(render(weeks, overall))
