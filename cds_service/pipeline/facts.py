"""Patient facts from the resolved resources (pure: no I/O, `now` passed in).

Documented choices (see docs/clinical-rules.md):
- Procedures count when `completed`, `in-progress` (a labour epidural still running) or `stopped` (an
  epidural abandoned after a wet tap; DSTU2/STU3 call it `aborted`); every other status is ignored.
  Their time is performedPeriod.end, else performedDateTime, else performedPeriod.start, read by
  `ProcedureView.performed_at` (date-only values as the latest instant they can denote). A puncture whose
  time cannot be placed (none, performedString, an invalid date) is an *uncertain puncture*: kept, never
  dropped (SPEC §2).
- Conditions are ignored when refuted or entered-in-error, or when their clinical status is inactive,
  remission or resolved (as a CodeableConcept, or as the string of DSTU2/STU3). They count when dated
  (onset, else recordedDate) within the look-back, or undated but explicitly active; findings of the
  `durable` group (intracranial hypotension, CSF leak, post-puncture diagnoses, and the structural red
  flags: haemorrhages, sinus thrombosis, abscess, raised pressure, PRES) count while active whatever
  their age.
- Observations count when final, amended, corrected or preliminary and effective within the observation
  window; a finding observation with valueBoolean false or an "absent/negative" value is not a finding.
  An exam written in words (valueString) is read like any text, with its negations.
  A body temperature at or above `fever_celsius` is fever; a Glasgow coma score total below
  `gcs_altered_below` is altered mental status.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cds_service.fhir.time import (
    Instant,
    latest_instant,
    naive_instant,
    surely_before,
    youngest_age,
)
from cds_service.fhir.views import (
    ConditionView,
    ObservationView,
    Parsed,
    PatientView,
    ProcedureView,
    Quantity,
    V,
    read_resources,
)
from cds_service.knowledge import ConceptIndex, Knowledge
from cds_service.knowledge.model import Thresholds
from cds_service.knowledge.terminology import (
    describe,
    has_standard_code,
    match,
    parts,
    problem_codes,
    recognised_by_any,
    uninterpreted_words,
)
from cds_service.pipeline.classify import classify_study
from cds_service.pipeline.domain import (
    Finding,
    PatientFacts,
    PriorStudy,
    ProcedureEvent,
    UnreadWords,
)
from cds_service.pipeline.history import prior_studies

CLOCK_SKEW = timedelta(minutes=10)


def _within(at: Instant, oldest: datetime, now: datetime) -> bool:
    """Not older than `oldest` and not in the future: a date-only value (an interval, SPEC §2) is in
    the future only when its earliest instant is (a Condition dated today counts today)."""
    return oldest <= at.at and at.first <= now + CLOCK_SKEW


_INACTIVE_CLINICAL = {"inactive", "remission", "resolved"}
_ACTIVE_CLINICAL = {"active", "recurrence", "relapse"}
_UNTRUSTED_VERIFICATION = {"refuted", "entered-in-error"}
_OBSERVATION_STATUSES = {"final", "amended", "corrected", "preliminary"}
# FHIR R4 statuses of a procedure that happened (SPEC §2), plus `aborted`, their DSTU2/STU3 name.
PROCEDURE_STATUSES = {"completed", "in-progress", "stopped", "aborted"}


def _coding_code(concept: Any) -> str | None:
    """The code of a status: a CodeableConcept (R4) or a plain string (DSTU2/STU3)."""
    if isinstance(concept, str):
        return concept
    found = concept.get("coding") if isinstance(concept, dict) else None
    if isinstance(found, list):  # coding_dicts, without building the list: asked of every row
        for coding in found:
            if isinstance(coding, dict) and isinstance(code := coding.get("code"), str):
                return code
    return None


# What a procedure concept is to the engine (valuesets.yaml `role`; knowledge/predicates.py): a blood
# patch is a treatment, no puncture; a delivery makes the patient postpartum (SPEC §2). A spinal for a
# caesarean matches a puncture concept and a delivery concept: it is both.
_PATCH, _DELIVERY, _PUNCTURE = "blood-patch", "delivery", "dural-puncture"


@dataclass
class _ProcedureFacts:
    punctures: list[ProcedureEvent] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)
    patches: list[ProcedureEvent] = field(default_factory=list)
    deliveries: list[Finding] = field(default_factory=list)


def _procedures(
    raw: list[dict[str, Any]], k: Knowledge, now: datetime, t: Thresholds
) -> _ProcedureFacts:
    def relevant(resource: dict[str, Any]) -> bool:
        status = resource.get("status")  # raw: may be of any JSON type
        return (
            isinstance(status, str)
            and status in PROCEDURE_STATUSES
            and bool(match(resource.get("code"), k.procedures))
        )

    found = _ProcedureFacts()
    invalid: list[dict[str, Any]] = []
    oldest = now - timedelta(days=t.lookback_days)
    delivered_since = now - timedelta(days=t.postpartum_days)
    dated: list[tuple[dict[str, Any], Instant | None]] = [
        (item.raw, item.model.performed_at())
        for item in read_resources(raw, ProcedureView, relevant, invalid)
    ]
    # A recognised procedure that fails validation (e.g. month 13 in its date) still happened; a
    # dateTime without its offset is placed by the interval it can lie in (SPEC §2).
    dated += [(resource, _naive_performed(resource)) for resource in invalid]
    for resource, at in dated:
        kinds = match(resource.get("code"), k.procedures)
        concepts = [k.valuesets.procedures[kind] for kind in sorted(kinds)]
        roles = {c.role for c in concepts}
        names = sorted(c.display for c in concepts)
        description = describe(resource.get("code"), names[0] if names else "spinal procedure")
        # A blood patch is a treatment, not a new puncture (SPEC §2), whatever else its text says.
        is_patch = _PATCH in roles
        is_puncture = not is_patch and _PUNCTURE in roles
        if _DELIVERY in roles and (at is None or _within(at, delivered_since, now)):
            # An undated delivery may be recent: postpartum, the cautious reading.
            for c in concepts:
                if c.role == _DELIVERY and c.finding is not None:
                    found.deliveries.append(Finding(c.finding, description, at, "procedure"))
        if at is None:
            if is_puncture:
                found.uncertain.append(description)
            continue
        if not _within(at, oldest, now) or not (is_patch or is_puncture):
            continue
        study = classify_study(resource.get("code"), k)
        (found.patches if is_patch else found.punctures).append(
            ProcedureEvent(description, at, study_type=study)
        )
    found.punctures.sort(key=lambda e: e.at.at, reverse=True)
    found.patches.sort(key=lambda e: e.at.at, reverse=True)
    return found


def _naive_performed(resource: dict[str, Any]) -> Instant | None:
    """performedPeriod.end, else performedDateTime, else performedPeriod.start of a procedure that
    failed validation, when that value is a dateTime without offset; else None (uncertain)."""
    period = resource.get("performedPeriod")
    period = period if isinstance(period, dict) else {}
    for value in (period.get("end"), resource.get("performedDateTime"), period.get("start")):
        if value is not None:
            return naive_instant(value)
    return None


# Times a Condition or an Observation is dated by: some EHRs write them without an offset (invalid
# FHIR, SPEC §2: known to ±14 h).
_TIME_FIELDS = ("effectiveDateTime", "onsetDateTime", "recordedDate", "issued", "abatementDateTime")


def _read_lenient_wanted(
    raw: list[dict[str, Any]],
    view: type[V],
    keep: Callable[[dict[str, Any]], bool],
    wanted: dict[int, tuple[bool, bool]],
) -> list[tuple[Parsed[V], tuple[bool, bool]]]:
    """read_resources for two readings of one type at once, and a second chance for a resource
    refused only for a time written without an offset: read as the latest instant it can denote
    (-12:00), so a red flag dated that way still counts (never dropped for its date's form); the
    raw resource stays the one sent (its naive time is read as an interval, _naive_time).

    `keep` accepts what either reading wants and records in `wanted`, by the resource's id, which
    ones: each resource is validated once. A resource given its second chance is wanted by a
    reading when both it and its repaired copy are, as when each reading reads it apart."""
    invalid: list[dict[str, Any]] = []
    parsed = [(item, wanted[id(item.raw)]) for item in read_resources(raw, view, keep, invalid)]
    for sent in invalid:
        fixed = _offset_naive_times(sent)
        if fixed is not None:
            for item in read_resources([fixed], view, keep):
                first, second = wanted[id(sent)]
                again_first, again_second = wanted[id(fixed)]
                flags = (first and again_first, second and again_second)
                parsed.append((Parsed(sent, item.model), flags))
    return parsed


def _naive_time(raw: dict[str, Any], *keys: str) -> Instant | None:
    """The first of `keys` written without an offset, as the interval it can lie in (SPEC §2)."""
    return next((at for key in keys if (at := naive_instant(raw.get(key))) is not None), None)


def _offset_naive_times(resource: dict[str, Any]) -> dict[str, Any] | None:
    fixed: dict[str, Any] | None = None
    for key in _TIME_FIELDS:
        value = resource.get(key)
        if naive_instant(value) is not None:
            fixed = fixed or dict(resource)
            fixed[key] = f"{str(value).strip()}-12:00"
    return fixed


def _condition_time(condition: ConditionView) -> Instant | None:
    onset = condition.onsetDateTime or (
        condition.onsetPeriod.start if condition.onsetPeriod else None
    )
    recorded = condition.recordedDate or condition.dateRecorded or condition.assertedDate
    return latest_instant(onset if onset is not None else recorded)


# What a Condition is dated by (_condition_time, _naive_time): onset, else when it was recorded.
_CONDITION_TIMES = ("onsetDateTime", "recordedDate", "dateRecorded", "assertedDate")


def _condition_surely_before(resource: dict[str, Any], oldest: datetime) -> bool:
    """A Condition whose every raw time it may be dated by is plainly older than `oldest` (and that
    has one): however it is dated once validated, it is older. Skipped before any validation, as an
    old Observation is."""
    period = resource.get("onsetPeriod")
    if period is not None and not isinstance(period, dict):
        return False
    values = [resource.get(key) for key in _CONDITION_TIMES]
    if period is not None:
        values.append(period.get("start"))
    present = [value for value in values if value is not None]
    return bool(present) and all(surely_before(value, oldest) for value in present)


def _problem_list(
    raw: list[dict[str, Any]], k: Knowledge, now: datetime, t: Thresholds
) -> tuple[list[Finding], list[UnreadWords]]:
    """The problem list's two readings, from one screen and one validation per Condition: the
    findings it records, and the words of the recent ones that carry no standard code (a coded one
    is understood by its code) that no rule accounts for (the fail-safe rule). Each reading gets
    exactly the Conditions it would get read on its own."""
    not_the_patients = k.finding_groups["not_the_patients"]
    durable = k.finding_groups["durable"]
    oldest = now - timedelta(days=t.lookback_days)
    recent_since = now - timedelta(hours=t.observation_window_hours)
    wanted: dict[int, tuple[bool, bool]] = {}  # id of a kept resource: (findings, words)

    def keep(resource: dict[str, Any]) -> bool:
        # The code first: most of a long problem list is no finding at all and coded (one lookup).
        kinds, standard = problem_codes(resource.get("code"), k)
        if (not kinds and standard) or (
            _coding_code(resource.get("verificationStatus")) in _UNTRUSTED_VERIFICATION
            or _coding_code(resource.get("clinicalStatus")) in _INACTIVE_CLINICAL
        ):
            return False
        findings = (
            bool(kinds)
            and not kinds & not_the_patients  # a family history: never the patient's finding
            # An old finding counts only while active and durable: else older is never read.
            and not (kinds.isdisjoint(durable) and _condition_surely_before(resource, oldest))
        )
        words = not standard and not _condition_surely_before(resource, recent_since)
        if findings or words:
            wanted[id(resource)] = (findings, words)
        return findings or words

    findings: list[Finding] = []
    unread: list[UnreadWords] = []
    for item, (for_findings, for_words) in _read_lenient_wanted(raw, ConditionView, keep, wanted):
        at = _naive_time(item.raw, "onsetDateTime", "recordedDate") or _condition_time(item.model)
        if for_findings:
            findings += _condition_findings(item.raw, at, k, now, oldest)
        if for_words and at is not None and _within(at, recent_since, now):
            words = uninterpreted_words(item.raw.get("code"), k)
            if words:
                unread.append(UnreadWords(tuple(words), "problem list"))
    return findings, unread


def _condition_findings(
    raw: dict[str, Any], at: Instant | None, k: Knowledge, now: datetime, oldest: datetime
) -> list[Finding]:
    """The findings of one Condition: dated within the look-back (not in the future), or undated
    but active, or active and durable whatever its age."""
    if at is not None and at.first > now + CLOCK_SKEW:
        return []
    active = _coding_code(raw.get("clinicalStatus")) in _ACTIVE_CLINICAL
    recent = at is not None and at.at >= oldest
    durable = k.finding_groups["durable"]
    return [
        Finding(kind, describe(raw.get("code"), k.finding_display(kind)), at, "problem list")
        for kind in match(raw.get("code"), k.findings)
        if recent or (active and (at is None or kind in durable))
    ]


# A temperature written as text ("38.9 C", "101.3 °F", "38,5"): its number and unit, if any.
_TEMPERATURE_TEXT = re.compile(r"(\d{2,3}(?:[.,]\d+)?)\s*(?:°|deg)?\s*([CF])?\b", re.IGNORECASE)


def _celsius_of_text(text: str | None) -> float | None:
    found = _TEMPERATURE_TEXT.search(text or "")
    if found is None:
        return None
    return _to_celsius(float(found.group(1).replace(",", ".")), found.group(2) or "")


def _celsius(quantity: Quantity | None) -> float | None:
    if quantity is None or quantity.value is None:
        return None
    return _to_celsius(float(quantity.value), quantity.code or quantity.unit or "")


def _to_celsius(value: float, unit: str) -> float | None:
    unit = unit.strip().lower()
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


def _score(observation: ObservationView) -> float | None:
    """A score: valueInteger, or valueQuantity as FHIR's GCS example writes it (13 {score})."""
    if observation.valueInteger is not None:
        return float(observation.valueInteger)
    quantity = observation.valueQuantity
    return None if quantity is None or quantity.value is None else float(quantity.value)


def _surely_before(resource: dict[str, Any], oldest: datetime) -> bool:
    """An Observation whose raw effective time is plainly older than `oldest`: skipped before any
    validation (a five-year flowsheet costs a string parse per row, not a model). Anything that does
    not parse plainly is left to the validated reading."""
    return surely_before(
        resource.get("effectiveDateTime") or resource.get("effectiveInstant"), oldest
    )


def _observation_time(observation: ObservationView) -> Instant | None:
    period = observation.effectivePeriod
    value = observation.effectiveDateTime or observation.effectiveInstant
    if value is None and period is not None:
        value = period.end or period.start
    return latest_instant(value if value is not None else observation.issued)


def _observation_absent(raw: dict[str, Any], k: Knowledge) -> bool:
    """The observed finding is absent: valueBoolean false, no value (dataAbsentReason), or a value that
    opens with a negation cue of the knowledge's language ("No", "Absent", "not present", "neg")."""
    if raw.get("valueBoolean") is False or "dataAbsentReason" in raw:
        return True
    _, value_words = parts(raw.get("valueCodeableConcept"))
    value_text = value_words or str(raw.get("valueString", ""))
    return bool(k.language.after.search(value_text))


def _value_words(raw: dict[str, Any]) -> dict[str, str] | None:
    """valueString after the name of what was observed, as a clinician writes it ("Pupils unequal",
    "Neck stiffness: no"), as the words of a concept for the matcher."""
    value = raw.get("valueString")
    if not isinstance(value, str) or not value.strip():
        return None
    name = parts(raw.get("code"))[1].split("\n", 1)[0]
    return {"text": f"{name} {value}" if name else value}


# A blood pressure written as text ("168/112", "182 / 118 mmHg").
_PRESSURE_TEXT = re.compile(r"(?<![\d.])(\d{2,3})\s*/\s*(\d{2,3})(?![\d.])")
_MMHG_UNITS = {"mm[hg]", "mmhg", "mm hg", ""}
_KPA_TO_MMHG = 7.50062


def _mmhg(quantity: Any) -> float | None:
    """A pressure in mmHg from a raw Quantity (kPa converted), None when unreadable or implausible."""
    if not isinstance(quantity, dict):
        return None
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    unit = str(quantity.get("code") or quantity.get("unit") or "").strip().lower()
    if unit == "kpa":
        value = float(value) * _KPA_TO_MMHG
    elif unit not in _MMHG_UNITS:
        return None
    return float(value) if 20 <= value <= 350 else None


def _pressures(raw: dict[str, Any], k: Knowledge) -> tuple[float | None, float | None]:
    """Systolic and diastolic pressures of a blood pressure Observation: the components of a panel,
    a systolic or diastolic Observation on its own, or a value written "168/112"."""
    systolic = diastolic = None
    parts_read = [(raw.get("code"), raw.get("valueQuantity"))]
    components = raw.get("component")
    if isinstance(components, list):
        parts_read += [
            (c.get("code"), c.get("valueQuantity")) for c in components if isinstance(c, dict)
        ]
    for code, quantity in parts_read:
        keys = match(code, k.blood_pressure)
        if "systolic" in keys:
            systolic = _mmhg(quantity)
        elif "diastolic" in keys:
            diastolic = _mmhg(quantity)
    if systolic is None and diastolic is None and isinstance(raw.get("valueString"), str):
        written = _PRESSURE_TEXT.search(raw["valueString"])
        if written:
            systolic, diastolic = float(written.group(1)), float(written.group(2))
    return systolic, diastolic


def _pressure_findings(
    systolic: float | None, diastolic: float | None, at: Instant, t: Thresholds, k: Knowledge
) -> list[Finding]:
    """A hypertensive emergency in any adult (at or above 180/120), severe-range pressure in
    pregnancy or postpartum (at or above 160/110: a red flag only then, rules.yaml)."""

    def at_least(s_limit: float, d_limit: float) -> bool:
        return (systolic or 0) >= s_limit or (diastolic or 0) >= d_limit

    shown = "/".join("?" if v is None else f"{v:.0f}" for v in (systolic, diastolic))
    description = f"blood pressure {shown} mmHg"
    made = k.valuesets.blood_pressure.findings
    found = []
    if at_least(t.emergency_systolic, t.emergency_diastolic):
        found.append(Finding(made.emergency, description, at, "observation"))
    if at_least(t.severe_systolic_pregnancy, t.severe_diastolic_pregnancy):
        found.append(Finding(made.severe_range, description, at, "observation"))
    return found


def _observations(
    raw: list[dict[str, Any]], k: Knowledge, now: datetime, t: Thresholds
) -> tuple[list[Finding], list[UnreadWords]]:
    """The Observations' two readings, from one screen and one validation per Observation within
    the observation window: the findings measured or written (fever, blood pressure, Glasgow coma
    score, an exam in words), and the words of values written in words, whose observed item the
    knowledge reads (valuesets.yaml `read-observations`), that no rule accounts for (the fail-safe
    rule). Each reading gets exactly the Observations it would get read on its own."""
    measured = (k.temperature, k.gcs, k.blood_pressure, k.findings)
    oldest = now - timedelta(hours=t.observation_window_hours)
    wanted: dict[int, tuple[bool, bool]] = {}  # id of a kept resource: (findings, words)

    def keep(resource: dict[str, Any]) -> bool:
        status = resource.get("status")  # raw: may be of any JSON type
        if not isinstance(status, str) or status not in _OBSERVATION_STATUSES:
            return False
        if _surely_before(resource, oldest):
            return False
        findings = _may_state_a_finding(resource, measured, k)
        words = _written_value(resource, k) is not None
        if findings or words:
            wanted[id(resource)] = (findings, words)
        return findings or words

    findings: list[Finding] = []
    unread: list[UnreadWords] = []
    for item, (for_findings, for_words) in _read_lenient_wanted(raw, ObservationView, keep, wanted):
        at = _naive_time(item.raw, "effectiveDateTime") or _observation_time(item.model)
        if at is None or not _within(at, oldest, now):
            continue
        if for_findings:
            findings += _observation_findings(item, at, k, t)
        if for_words:
            unread += _observation_words(item.raw, k)
    return findings, unread


def _may_state_a_finding(
    resource: dict[str, Any], measured: tuple[ConceptIndex, ...], k: Knowledge
) -> bool:
    """What it observed is measured (temperature, GCS, blood pressure) or a finding, or its value
    names one."""
    if recognised_by_any(resource.get("code"), measured):
        return True
    value = resource.get("valueCodeableConcept")  # most values are quantities: skip cheaply
    if value is not None and match(value, k.findings):
        return True
    words = _value_words(resource)
    return words is not None and bool(match(words, k.findings))


def _observation_findings(
    item: Parsed[ObservationView], at: Instant, k: Knowledge, t: Thresholds
) -> list[Finding]:
    findings: list[Finding] = []
    if match(item.raw.get("code"), k.temperature):
        celsius = _celsius(item.model.valueQuantity)
        if celsius is None:  # some EHRs export the reading as text
            celsius = _celsius_of_text(item.model.valueString)
        if celsius is not None and celsius >= t.fever_celsius:
            fever = k.valuesets.body_temperature.finding
            findings.append(Finding(fever, f"temperature {celsius:.1f} °C", at, "observation"))
        return findings
    if match(item.raw.get("code"), k.blood_pressure):
        return _pressure_findings(*_pressures(item.raw, k), at, t, k)
    if match(item.raw.get("code"), k.gcs):
        score = _score(item.model)
        if score is not None and score < t.gcs_altered_below:
            altered = k.valuesets.glasgow_coma_score.finding
            findings.append(Finding(altered, f"Glasgow coma score {score:g}", at, "observation"))
        return findings
    # An exam written in words ("Left arm weakness, pronator drift") is read with its negations,
    # whatever its first word: "No fever but confused" still affirms the confusion.
    words = _value_words(item.raw)
    concepts = (
        (words,)
        if _observation_absent(item.raw, k)
        else (item.raw.get("code"), item.raw.get("valueCodeableConcept"), words)
    )
    for concept in concepts:
        findings.extend(
            Finding(kind, describe(concept, k.finding_display(kind)), at, "observation")
            for kind in match(concept, k.findings)
        )
    return findings


def _written_value(resource: dict[str, Any], k: Knowledge) -> dict[str, Any] | None:
    """An Observation's value in words: valueString, or a valueCodeableConcept with no standard
    code that has words or codes."""
    written = resource.get("valueString")
    if isinstance(written, str) and written.strip():
        return {"text": written}
    coded = resource.get("valueCodeableConcept")
    if isinstance(coded, dict) and not has_standard_code(coded, k) and any(parts(coded)):
        return coded
    return None


def _observation_words(raw: dict[str, Any], k: Knowledge) -> list[UnreadWords]:
    """The words of a value written in words that no rule accounts for, when the knowledge reads
    the observed item (a flowsheet row of skin or diet is not read)."""
    name = parts(raw.get("code"))[1]
    obstetric = k.read_items_obstetric
    if k.read_items.search(name):
        obstetric_only = False
    elif obstetric is not None and obstetric.search(name):
        obstetric_only = True
    else:
        return []
    words = uninterpreted_words(_written_value(raw, k), k)
    return [UnreadWords(tuple(words), "observation", obstetric_only)] if words else []


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
    by_type, dropped = _by_type(resources, patient_id)
    # Every resource names another patient: the EHR sent a patientId that matches none.
    mismatch = bool(dropped) and not any(v for kind, v in by_type.items() if kind != "Patient")
    procedures = _procedures(by_type.get("Procedure", []), k, now, t)
    punctures, uncertain, patches = procedures.punctures, procedures.uncertain, procedures.patches
    problems, unread_problems = _problem_list(by_type.get("Condition", []), k, now, t)
    observed, unread_observed = _observations(by_type.get("Observation", []), k, now, t)
    findings = problems + observed + procedures.deliveries
    lookback = max(t.sih_lookback_days, t.lookback_days)
    studies = prior_studies(by_type, k, now, lookback, t.lookback_days)
    # What recent imaging reports state counts as the problem list does (within the look-back).
    findings += [
        Finding(
            kind, f"{k.finding_display(kind)} on {study.description}", study.at, "imaging report"
        )
        for study in studies
        for kind in sorted(study.findings)
    ]
    punctures, myelograms = _myelography_after_headache(punctures, findings, k)
    return PatientFacts(
        age_years=_age(by_type.get("Patient", []), patient_id, now),
        punctures=punctures,
        uncertain_punctures=uncertain,
        blood_patches=patches,
        findings=findings,
        studies=sorted(studies + myelograms, key=lambda s: s.at.at, reverse=True),
        unread=unread_problems + unread_observed,
        anomalies=("patient-matches-no-resource",) if mismatch else (),
    )


def _myelography_after_headache(
    punctures: list[ProcedureEvent], findings: list[Finding], k: Knowledge
) -> tuple[list[ProcedureEvent], list[PriorStudy]]:
    """A myelography done after a recorded headache is imaging history, not a new puncture that
    restarts the clock; one with no headache recorded before it is a puncture like any other."""
    headache = k.finding_groups["headache_evidence"]
    first = min((f.at.at for f in findings if f.kind in headache and f.at), default=None)
    kept, studies = [], []
    for event in punctures:
        study = event.study_type
        if (
            study is not None
            and "myelography" in k.study_roles[study]
            and first is not None
            and first < event.at.at
        ):
            studies.append(PriorStudy(study, event.description, event.at))
        else:
            kept.append(event)
    return kept, studies


def _by_type(
    resources: dict[str, list[dict[str, Any]]], patient_id: str
) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """The patient's resources by type (those with a string resourceType), and how many were
    dropped as plainly another patient's (defence against a mixed-up bundle): a resource is the
    patient's unless its subject (or DSTU2/STU3 `patient`) references another Patient. Every
    resource of a record passes here: the usual reference, "Patient/<id>" (an id has no "/"), is
    compared whole; any other is parsed (_references_patient)."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    dropped = 0
    own = None if "/" in patient_id else f"Patient/{patient_id}"
    for key in resources:
        for r in resources[key]:
            resource_type = r.get("resourceType")
            if not isinstance(resource_type, str):
                continue
            subject = r.get("subject") or r.get("patient")
            if (
                not isinstance(subject, dict)
                or (reference := subject.get("reference")) == own
                or _references_patient(reference, patient_id)
            ):
                by_type.setdefault(resource_type, []).append(r)
            else:
                dropped += 1
    return by_type, dropped


def _references_patient(reference: Any, patient_id: str) -> bool:
    """A subject reference that is not plainly another patient's: any but "…Patient/<other>…"."""
    if not isinstance(reference, str) or "Patient/" not in reference:
        return True
    return reference.rsplit("Patient/", 1)[1].split("/")[0] == patient_id
