"""The clinical decision: which ACR scenario applies to one draft imaging order, and how the ACR rates
the drafted study there. A pure function of typed facts (SPEC §2, precedence: first match wins)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cds_service.facts import Finding, PatientFacts, ProcedureEvent, Thresholds
from cds_service.knowledge import Knowledge, RatingCell, Scenario
from cds_service.orders import ImagingOrder, OrderReason
from cds_service.timing import hours_between

HEADACHE = frozenset(
    {
        "headache",
        "post-dural-puncture-headache",
        "orthostatic-headache",
        "intracranial-hypotension",
        "csf-leak",
        "thunderclap-headache",
    }
)
INTRACRANIAL_HYPOTENSION = frozenset(
    {"post-dural-puncture-headache", "orthostatic-headache", "intracranial-hypotension", "csf-leak"}
)
RED_FLAGS = frozenset(
    {
        "fever",
        "nuchal-rigidity",
        "seizure",
        "focal-neurological-deficit",
        "subdural-haematoma",
        "meningitis",
        "venous-sinus-thrombosis",
        "subarachnoid-haemorrhage-or-rcvs",
        "thunderclap-headache",
    }
)
ALTERED_MENTAL_STATUS = "altered-mental-status"


@dataclass(frozen=True)
class Decision:
    order: ImagingOrder
    scenario: Scenario
    rating: RatingCell
    hours_since_puncture: float | None
    puncture: ProcedureEvent | None
    blood_patch: ProcedureEvent | None
    evidence: list[Finding]  # the headache evidence relied on
    red_flags: list[Finding]
    age_known: bool


def decide(
    order: ImagingOrder,
    reason: OrderReason,
    patient: PatientFacts,
    k: Knowledge,
    t: Thresholds,
    now: datetime,
) -> Decision | None:
    """The scenario for this order, or None when the service should stay silent."""
    if patient.age_years is not None and patient.age_years < t.adult_age_years:
        return None
    if reason.stated and not reason.kinds() & HEADACHE:
        return None  # the order's own reason governs (e.g. an MS work-up): not our question
    findings = patient.findings + reason.findings
    kinds = {f.kind for f in findings}
    if not kinds & HEADACHE:
        return None
    puncture = patient.punctures[0] if patient.punctures else None
    if puncture is None and patient.undated_punctures:
        return None  # a puncture we cannot place in time: no safe scenario
    patch = next(
        (p for p in patient.blood_patches if puncture is None or p.at.at >= puncture.at.at), None
    )
    if puncture is None and patch is None and not kinds & INTRACRANIAL_HYPOTENSION:
        return None
    hours = max(0.0, hours_between(puncture.at.at, now)) if puncture else None

    if ALTERED_MENTAL_STATUS in kinds:
        scenario = Scenario.ALTERED_MENTAL_STATUS
    elif kinds & RED_FLAGS:
        scenario = Scenario.PDPH_ACUTE_RED_FLAGS
    elif patch is not None and _headache_since(patch, patient.findings, reason):
        scenario = Scenario.POST_BLOOD_PATCH
    elif hours is not None and hours <= t.acute_window_hours:
        scenario = Scenario.PDPH_ACUTE
    elif hours is not None:
        scenario = Scenario.PDPH_PERSISTENT
    elif patch is None:
        scenario = Scenario.SIH
    else:
        return None  # a blood patch with no new headache since and no puncture on record

    return Decision(
        order=order,
        scenario=scenario,
        rating=k.rating(scenario, order.study_type),
        hours_since_puncture=None if hours is None else round(hours, 1),
        puncture=puncture,
        blood_patch=patch,
        evidence=[f for f in findings if f.kind in HEADACHE],
        red_flags=[f for f in findings if f.kind in RED_FLAGS or f.kind == ALTERED_MENTAL_STATUS],
        age_known=patient.age_years is not None,
    )


def _headache_since(patch: ProcedureEvent, findings: list[Finding], reason: OrderReason) -> bool:
    """A headache after the patch: the order's own headache reason (stated now) or a dated finding."""
    if reason.kinds() & HEADACHE:
        return True
    return any(f.kind in HEADACHE and f.at is not None and f.at.at > patch.at.at for f in findings)
