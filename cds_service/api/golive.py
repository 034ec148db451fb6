"""The go-live reports (SPEC §6, docs/go-live.md): `/analytics/firing`, what each scenario showed or
would have shown per calendar period and knowledge version, and `/analytics/vocabulary-gaps`, what
the service met and could not read. JSON, or CSV with `format=csv`. Aggregates only, no patient data;
they need the EHR's JWT like every analytics endpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Query
from fastapi.responses import Response

from cds_service.api.deps import RuntimeDep
from cds_service.errors import CdsError
from cds_service.persistence.firing import FiringReport, as_csv, firing_report, firing_window
from cds_service.persistence.gaps import GapReport, gap_report, gaps_csv

router = APIRouter()
Format = Literal["json", "csv"]
CSV = "text/csv; charset=utf-8"


def _csv(text: str, name: str) -> Response:
    return Response(
        text, media_type=CSV, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get(
    "/analytics/firing",
    summary="Would-have-fired report: per scenario, calendar period and knowledge version",
    response_model=FiringReport,
    responses={200: {"content": {CSV: {}}}, 400: {"description": "Invalid window or parameter"}},
)
async def analytics_firing(
    runtime: RuntimeDep,
    since: Annotated[
        datetime | None,
        Query(
            description="Start, ISO instant (inclusive); default: the start of the period "
            "7 weeks (13 days by day) before the current one"
        ),
    ] = None,
    until: Annotated[datetime | None, Query(description="End, ISO instant; default now")] = None,
    by: Annotated[
        Literal["day", "week"], Query(description="Calendar day or ISO week, in UTC")
    ] = "week",
    format: Annotated[Format, Query(description="json or csv")] = "json",
) -> Response | FiringReport:
    try:
        start, end = firing_window(since, until, by, runtime.clock())
    except ValueError as exc:
        raise CdsError(400, "invalid-window", str(exc)) from None
    await anyio.to_thread.run_sync(runtime.audit.flush)  # this process's latest rows count too
    report = await anyio.to_thread.run_sync(firing_report, runtime.store.engine, start, end, by)
    if format == "csv":
        return _csv(as_csv(report), f"firing-by-{by}.csv")
    return report


@router.get(
    "/analytics/vocabulary-gaps",
    summary="Order names, codes and words the service met and could not read",
    response_model=GapReport,
    response_model_exclude_none=True,
    responses={200: {"content": {CSV: {}}}, 400: {"description": "Invalid parameter"}},
)
async def analytics_vocabulary_gaps(
    runtime: RuntimeDep,
    min_patients: Annotated[
        int | None,
        Query(
            alias="minPatients",
            description="Show entries met for at least this many distinct patients; never fewer "
            "than CDS_GAP_MIN_PATIENTS",
        ),
    ] = None,
    format: Annotated[Format, Query(description="json or csv")] = "json",
) -> Response | GapReport:
    settings = runtime.settings
    threshold = settings.gap_min_patients if min_patients is None else min_patients
    if threshold < settings.gap_min_patients:
        raise CdsError(
            400,
            "invalid-threshold",
            f"minPatients can only be raised: at least {settings.gap_min_patients} "
            "(CDS_GAP_MIN_PATIENTS), so that nothing typed into a few patients' orders surfaces",
        )
    await anyio.to_thread.run_sync(runtime.audit.flush)
    report = await anyio.to_thread.run_sync(
        gap_report,
        runtime.store.engine,
        runtime.clock(),
        threshold,
        settings.gap_retention_days,
    )
    if format == "csv":
        return _csv(gaps_csv(report), "vocabulary-gaps.csv")
    return report
