"""Patient facts from the resolved resources (pure: no I/O, `now` passed in).

Documented choices (see docs/clinical-rules.md):
- Procedures count only when `completed`; entered-in-error, not-done and every other status are ignored.
  Their time is performedPeriod.end, else performedDateTime, else performedPeriod.start, read by
  `timing.latest_instant` (date-only values as the latest instant they can denote).
- Conditions are ignored when refuted or entered-in-error, or when their clinical status is inactive,
  remission or resolved. They count when dated (onset, else recordedDate) within the look-back, or
  undated but explicitly active.
- Observations count when final, amended, corrected or preliminary and effective within the observation
  window; a finding observation with valueBoolean false or an "absent/negative" value is not a finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cds_service.knowledge import Knowledge
from cds_service.parse import (
    ConditionView,
    ObservationView,
    PatientView,
    ProcedureView,
    Quantity,
    read_resources,
)
from cds_service.terminology import coding_dicts, describe, match, words
from cds_service.timing import Instant, latest_instant, youngest_age

CLOCK_SKEW = timedelta(minutes=10)
_INACTIVE_CLINICAL = {"inactive", "remission", "resolved"}
_ACTIVE_CLINICAL = {"active", "recurrence", "relapse"}
_UNTRUSTED_VERIFICATION = {"refuted", "entered-in-error"}
_OBSERVATION_STATUSES = {"final", "amended", "corrected", "preliminary"}
_ABSENT_WORDS = ("absent", "negative", "not present", "none", "no ")


@dataclass(frozen=True)
class Thresholds:
    acute_window_hours: float
    lookback_days: float
    fever_celsius: float
    observation_window_hours: float
    adult_age_years: int


@dataclass(frozen=True)
class ProcedureEvent:
    description: str
    at: Instant


@dataclass(frozen=True)
class Finding:
    kind: str
    description: str
    at: Instant | None
    origin: str  # "problem list", "observation", "order reason"


@dataclass(frozen=True)
class PatientFacts:
    age_years: int | None
    punctures: list[ProcedureEvent] = field(default_factory=list)  # most recent first
    undated_punctures: int = 0
    blood_patches: list[ProcedureEvent] = field(default_factory=list)  # most recent first
    findings: list[Finding] = field(default_factory=list)

    def kinds(self) -> set[str]:
        return {f.kind for f in self.findings}


def _coding_code(concept: Any) -> str | None:
    for coding in coding_dicts(concept):
        if isinstance(coding.get("code"), str):
            return str(coding["code"])
    return None


def procedure_time(procedure: ProcedureView) -> Instant | None:
    period = procedure.performedPeriod
    for value in (
        period.end if period else None,
        procedure.performedDateTime,
        period.start if period else None,
    ):
        if value is not None:
            return latest_instant(value)
    return None


def _procedures(
    raw: list[dict[str, Any]], k: Knowledge, now: datetime, t: Thresholds
) -> tuple[list[ProcedureEvent], int, list[ProcedureEvent]]:
    def relevant(resource: dict[str, Any]) -> bool:
        return resource.get("status") == "completed" and bool(
            match(resource.get("code"), k.procedures)
        )

    punctures: list[ProcedureEvent] = []
    patches: list[ProcedureEvent] = []
    undated = 0
    oldest = now - timedelta(days=t.lookback_days)
    for item in read_resources(raw, ProcedureView, relevant):
        kinds = match(item.raw.get("code"), k.procedures)
        description = describe(item.raw.get("code"), "spinal procedure")
        at = procedure_time(item.model)
        if at is None:
            if "epidural-blood-patch" not in kinds:
                undated += 1
            continue
        if at.at > now + CLOCK_SKEW or at.at < oldest:
            continue
        # A blood patch is a treatment, not a new puncture (SPEC §2), whatever else its text says.
        if "epidural-blood-patch" in kinds:
            patches.append(ProcedureEvent(description, at))
        else:
            punctures.append(ProcedureEvent(description, at))
    punctures.sort(key=lambda e: e.at.at, reverse=True)
    patches.sort(key=lambda e: e.at.at, reverse=True)
    return punctures, undated, patches


def _condition_time(condition: ConditionView) -> Instant | None:
    onset = condition.onsetDateTime or (
        condition.onsetPeriod.start if condition.onsetPeriod else None
    )
    return latest_instant(onset if onset is not None else condition.recordedDate)


def _conditions(
    raw: list[dict[str, Any]], k: Knowledge, now: datetime, t: Thresholds
) -> list[Finding]:
    def relevant(resource: dict[str, Any]) -> bool:
        if _coding_code(resource.get("verificationStatus")) in _UNTRUSTED_VERIFICATION:
            return False
        if _coding_code(resource.get("clinicalStatus")) in _INACTIVE_CLINICAL:
            return False
        return bool(match(resource.get("code"), k.findings))

    oldest = now - timedelta(days=t.lookback_days)
    findings: list[Finding] = []
    for item in read_resources(raw, ConditionView, relevant):
        at = _condition_time(item.model)
        if at is None:
            if _coding_code(item.raw.get("clinicalStatus")) not in _ACTIVE_CLINICAL:
                continue
        elif not oldest <= at.at <= now + CLOCK_SKEW:
            continue
        description = describe(item.raw.get("code"), "condition")
        findings.extend(
            Finding(kind, description, at, "problem list")
            for kind in match(item.raw.get("code"), k.findings)
        )
    return findings


def _celsius(quantity: Quantity | None) -> float | None:
    if quantity is None or quantity.value is None:
        return None
    value = float(quantity.value)
    unit = (quantity.code or quantity.unit or "").strip().lower()
    if unit in {"cel", "°c", "c", "degc", "deg c", "celsius"}:
        return value
    if unit in {"[degf]", "°f", "f", "degf", "deg f", "fahrenheit"}:
        return (value - 32.0) * 5.0 / 9.0
    # No usable unit: infer from the physiological range rather than drop a possible fever.
    if 25.0 <= value <= 45.0:
        return value
    if 77.0 <= value <= 113.0:
        return (value - 32.0) * 5.0 / 9.0
    return None


def _observation_time(observation: ObservationView) -> Instant | None:
    period = observation.effectivePeriod
    value = observation.effectiveDateTime or observation.effectiveInstant
    if value is None and period is not None:
        value = period.end or period.start
    return latest_instant(value if value is not None else observation.issued)


def _observation_absent(raw: dict[str, Any]) -> bool:
    if raw.get("valueBoolean") is False or "dataAbsentReason" in raw:
        return True
    value_text = words(raw.get("valueCodeableConcept")).lower() or str(raw.get("valueString", ""))
    return value_text.lower().startswith(_ABSENT_WORDS)


def _observations(
    raw: list[dict[str, Any]], k: Knowledge, now: datetime, t: Thresholds
) -> list[Finding]:
    temperature = k.temperature

    def relevant(resource: dict[str, Any]) -> bool:
        status = resource.get("status")  # raw: may be of any JSON type
        if not isinstance(status, str) or status not in _OBSERVATION_STATUSES:
            return False
        code = resource.get("code")
        return bool(match(code, temperature) or match(code, k.findings)) or bool(
            match(resource.get("valueCodeableConcept"), k.findings)
        )

    oldest = now - timedelta(hours=t.observation_window_hours)
    findings: list[Finding] = []
    for item in read_resources(raw, ObservationView, relevant):
        at = _observation_time(item.model)
        if at is None or not oldest <= at.at <= now + CLOCK_SKEW:
            continue
        if match(item.raw.get("code"), temperature):
            celsius = _celsius(item.model.valueQuantity)
            if celsius is not None and celsius >= t.fever_celsius:
                findings.append(
                    Finding("fever", f"temperature {celsius:.1f} °C", at, "observation")
                )
            continue
        if _observation_absent(item.raw):
            continue
        for concept in (item.raw.get("code"), item.raw.get("valueCodeableConcept")):
            findings.extend(
                Finding(kind, describe(concept, "finding"), at, "observation")
                for kind in match(concept, k.findings)
            )
    return findings


def _age(raw: list[dict[str, Any]], patient_id: str, now: datetime) -> int | None:
    for item in read_resources(raw, PatientView):
        if item.model.id in (None, patient_id):
            return youngest_age(item.model.birthDate, now)
    return None


def patient_facts(
    resources: dict[str, list[dict[str, Any]]],
    patient_id: str,
    k: Knowledge,
    now: datetime,
    t: Thresholds,
) -> PatientFacts:
    """All facts the rules read, from every resolved resource whatever prefetch key carried it.
    One pass sorts the patient's resources by type, so each reader sees only its own type."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for key in resources:
        for r in resources[key]:
            resource_type = r.get("resourceType")
            if isinstance(resource_type, str) and _is_for_patient(r, patient_id):
                by_type.setdefault(resource_type, []).append(r)
    punctures, undated, patches = _procedures(by_type.get("Procedure", []), k, now, t)
    return PatientFacts(
        age_years=_age(by_type.get("Patient", []), patient_id, now),
        punctures=punctures,
        undated_punctures=undated,
        blood_patches=patches,
        findings=_conditions(by_type.get("Condition", []), k, now, t)
        + _observations(by_type.get("Observation", []), k, now, t),
    )


def _is_for_patient(resource: dict[str, Any], patient_id: str) -> bool:
    """Drop resources that plainly belong to another patient (defence against a mixed-up bundle)."""
    subject = resource.get("subject") or resource.get("patient")
    if not isinstance(subject, dict):
        return True
    reference = subject.get("reference")
    if not isinstance(reference, str) or "Patient/" not in reference:
        return True
    return reference.rsplit("Patient/", 1)[1].split("/")[0] == patient_id
