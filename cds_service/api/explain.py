"""The full rationale behind a card, one click away (SPEC §4): ratings of every study in the scenario
with their provenance and radiation, next steps, what to watch for, sources. Knowledge only, no
patient data and no hookInstance in the URL, so it is served without the EHR's JWT, readable in an
EHR browser pane (narrow, no script, no external asset)."""

from __future__ import annotations

import html
import re
from functools import lru_cache

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from cds_service.api.deps import RuntimeDep
from cds_service.errors import CdsError
from cds_service.knowledge import Knowledge

router = APIRouter()

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;margin:0 auto;max-width:46rem;padding:1rem;color:#1b1b1b}
h1{font-size:1.3rem}h2{font-size:1.05rem;margin-top:1.5rem}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.35rem;text-align:left;vertical-align:top;font-size:.95rem}
.muted{color:#555;font-size:.85rem}
"""


def _text(value: str, values: dict[str, str]) -> str:
    escaped = html.escape(" ".join(value.format(**values).split()))
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)


def explanation(k: Knowledge, scenario: str, values: dict[str, str]) -> str:
    rules = k.rules.scenarios[scenario]
    phrases = k.cards.rating_phrases
    words = k.cards.explain
    rows = []
    seen: set[str] = set()
    for study_type, study in k.imaging.studies.items():
        if study.name in seen:
            continue
        seen.add(study.name)
        cell = k.rating(scenario, study_type)
        source = k.rules.rating_sources[cell.source] if cell.source else words.no_rating
        note = f"; {cell.note}" if cell.note else ""
        rows.append(
            f"<tr><td>{html.escape(study.name)}</td><td>{html.escape(phrases[cell.value])}</td>"
            f"<td>{html.escape(source + note)}</td>"
            f"<td>{html.escape(study.rrl or k.cards.labels.radiation_unknown)}</td></tr>"
        )
    sections = [f"<h1>{_text(rules.title, values)}</h1>", f"<p>{_text(rules.advice, values)}</p>"]
    if rules.next_steps:
        sections.append(
            f"<h2>{html.escape(words.next_steps)}</h2><p>{_text(rules.next_steps, values)}</p>"
        )
    if rules.watch_for:
        sections.append(
            f"<h2>{html.escape(words.watch_for)}</h2><p>{_text(rules.watch_for, values)}</p>"
        )
    head = (words.study, words.rating, words.source, words.radiation)
    sections.append(
        f"<h2>{html.escape(words.ratings)}</h2><table><tr>"
        + "".join(f"<th>{html.escape(h)}</th>" for h in head)
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )
    sources = "".join(f"<li>{html.escape(text)}</li>" for text in k.rules.rating_sources.values())
    sections.append(f"<h2>{html.escape(words.sources)}</h2><ul>{sources}</ul>")
    footer = words.footer.format(label=k.rules.source.label, fingerprint=k.fingerprint)
    sections.append(f'<p class="muted">{html.escape(footer)}</p>')
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>{_text(rules.title, values)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(sections)}</body></html>"
    )


@router.get(
    "/explain/{scenario}", response_class=HTMLResponse, summary="Why a card says what it says"
)
async def explain(scenario: str, runtime: RuntimeDep) -> HTMLResponse:
    k = next(iter(runtime.services.values())).knowledge
    if scenario not in k.rules.scenarios:
        raise CdsError(404, "unknown-scenario", f"no scenario {scenario!r}")
    return HTMLResponse(_page(k, scenario, tuple(runtime.evaluation.threshold_texts(k).items())))


@lru_cache(maxsize=256)
def _page(k: Knowledge, scenario: str, values: tuple[tuple[str, str], ...]) -> str:
    """A scenario's page, built once per knowledge and thresholds: it depends on nothing else."""
    return explanation(k, scenario, dict(values))
