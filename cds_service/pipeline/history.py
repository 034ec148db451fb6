"""The imaging a patient already had (SPEC §2, "Imaging history"), read from DiagnosticReports of the
radiology/imaging category (the prefetch template selects them; a report counts when its code is a
head or spine study), ImagingStudies and imaging Procedures, each classified with the same
classifier as draft orders and dated with the same care as punctures. A report's conclusion is kept
in words for the card, and read like any clinician's text, with its negations, for the findings it
states ("Acute subdural haematoma" is a red flag; "No acute intracranial haemorrhage" is none), as
are its coded conclusionCode values."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cds_service.fhir.time import latest_instant, surely_before
from cds_service.fhir.views import (
    DiagnosticReportView,
    ImagingStudyView,
    ProcedureView,
    read_resources,
)
from cds_service.knowledge import Knowledge
from cds_service.knowledge.terminology import clip, coding_dicts, describe, match
from cds_service.pipeline.classify import classify_study
from cds_service.pipeline.domain import PriorStudy

REPORT_STATUSES = {"final", "amended", "corrected", "preliminary"}
CONCLUSION_CHARS = 160


def _report_surely_before(resource: dict[str, Any], oldest: datetime) -> bool:
    """A report whose every raw time it may be dated by (effective, else issued) is plainly older
    than `oldest` (and that has one): outside the look-back however it is dated once validated."""
    period = resource.get("effectivePeriod")
    if period is not None and not isinstance(period, dict):
        return False
    values = [resource.get("effectiveDateTime"), resource.get("issued")]
    if period is not None:
        values += [period.get("end"), period.get("start")]
    present = [value for value in values if value is not None]
    return bool(present) and all(surely_before(value, oldest) for value in present)


def _reports(
    raw: list[dict[str, Any]], k: Knowledge, findings_since: datetime, oldest: datetime
) -> list[PriorStudy]:
    def relevant(resource: dict[str, Any]) -> bool:
        # Screened before validation: a report of anything but head or spine imaging (a chest X-ray,
        # a lab panel) is never validated, as for procedures below; nor one older than the
        # look-back (prior_studies would drop it).
        status = resource.get("status")
        return (
            isinstance(status, str)
            and status in REPORT_STATUSES
            and classify_study(resource.get("code"), k) is not None
            and not _report_surely_before(resource, oldest)
        )

    found = []
    for item in read_resources(raw, DiagnosticReportView, relevant):
        study = classify_study(item.raw.get("code"), k)
        if study is None:  # relevant() lets only head and spine studies through
            continue
        view = item.model
        period = view.effectivePeriod
        value = view.effectiveDateTime or (period.end or period.start if period else None)
        at = latest_instant(value if value is not None else view.issued)
        if at is None:
            continue
        conclusion = view.conclusion.strip() if view.conclusion else ""
        stated: frozenset[str] = frozenset()
        if at.at >= findings_since:  # what older reports stated is history, not a finding
            for concept in ({"text": conclusion}, *(item.raw.get("conclusionCode") or [])):
                stated |= match(concept, k.findings)
        name = describe(item.raw.get("code"), k.imaging.studies[study].name)
        shown = clip(conclusion, CONCLUSION_CHARS) if conclusion else None
        found.append(PriorStudy(study, name, at, shown, stated))
    return found


def _imaging_studies(raw: list[dict[str, Any]], k: Knowledge) -> list[PriorStudy]:
    def relevant(resource: dict[str, Any]) -> bool:
        return resource.get("status") == "available"

    found = []
    for item in read_resources(raw, ImagingStudyView, relevant):
        view = item.model
        series = view.series or []
        # What was done: the procedure codes, refined by the study's and every series' description
        # read together ("Myelogram" with a series "Digital subtraction myelography" is a DSM).
        words = "\n".join(d for d in (view.description, *(s.description for s in series)) if d)
        codings = [c for code in item.raw.get("procedureCode") or [] for c in coding_dicts(code)]
        study = classify_study({"coding": codings, "text": words}, k)
        # When: the study's start, else its latest series' start.
        times = [t for t in (view.started, *(s.started for s in series)) if t is not None]
        at = latest_instant(times[0]) if times else None
        if study is None or at is None:
            continue
        name = view.description or k.imaging.studies[study].name
        found.append(PriorStudy(study, name, at))
    return found


def _procedures(raw: list[dict[str, Any]], k: Knowledge) -> list[PriorStudy]:
    def relevant(resource: dict[str, Any]) -> bool:
        # Screened before validation, so a puncture or an unrelated procedure is not validated (and
        # its defects reported) a second time; a myelography is read with the punctures (facts.py).
        if resource.get("status") != "completed":
            return False
        study = classify_study(resource.get("code"), k)
        return study is not None and "myelography" not in k.study_roles[study]

    found = []
    for item in read_resources(raw, ProcedureView, relevant):
        study = classify_study(item.raw.get("code"), k)
        at = item.model.performed_at()
        if study is not None and at is not None:
            name = describe(item.raw.get("code"), k.imaging.studies[study].name)
            found.append(PriorStudy(study, name, at))
    return found


def prior_studies(
    by_type: dict[str, list[dict[str, Any]]],
    k: Knowledge,
    now: datetime,
    lookback_days: float,
    findings_days: float,
) -> list[PriorStudy]:
    """Completed head and spine imaging within the look-back, most recent first, one per study and
    day (a report and its ImagingStudy describe the same study); what the reports of the last
    `findings_days` state is in their `findings`."""
    oldest = now - timedelta(days=lookback_days)
    studies = (
        _reports(
            by_type.get("DiagnosticReport", []), k, now - timedelta(days=findings_days), oldest
        )
        + _imaging_studies(by_type.get("ImagingStudy", []), k)
        + _procedures(by_type.get("Procedure", []), k)
    )
    unique: dict[tuple[str, str], PriorStudy] = {}

    # A report (with its conclusion and findings) is kept before the ImagingStudy of the same day.
    def key(s: PriorStudy) -> tuple[bool, float]:
        return (s.conclusion is None and not s.findings, -s.at.at.timestamp())

    for study in sorted(studies, key=key):
        if oldest <= study.at.at and study.at.first <= now + timedelta(minutes=10):
            unique.setdefault((study.study_type, study.at.at.date().isoformat()), study)
    return sorted(unique.values(), key=lambda s: s.at.at, reverse=True)
