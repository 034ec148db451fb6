"""The clinical decision: which ACR scenario applies to one draft imaging order, and how the ACR rates
the drafted study there. A pure function of typed facts.

The precedence itself is data (hooks/<knowledge>/rules.yaml, `precedence`: first match wins); this
module holds the small fixed set of predicates it composes, each a question about the facts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from cds_service.fhir.time import hours_between
from cds_service.knowledge import Knowledge, Rating, RatingCell, Scenario
from cds_service.knowledge.model import Thresholds
from cds_service.knowledge.predicates import IN_GROUP, PREDICATES
from cds_service.pipeline.domain import (
    Decision,
    Finding,
    ImagingOrder,
    OrderReason,
    PatientFacts,
    PriorStudy,
    ProcedureEvent,
)


@dataclass(frozen=True)
class Situation:
    """Everything the predicates read about one order, computed once."""

    order: ImagingOrder
    reason: OrderReason
    patient: PatientFacts
    findings: list[Finding]
    kinds: frozenset[str]
    groups: Mapping[str, frozenset[str]]
    puncture: ProcedureEvent | None  # the most recent dated puncture in the look-back
    # Hours since the puncture: at least (from the latest instant its time can denote) and at most
    # (from the earliest: a date-only time is an interval, SPEC §2).
    hours: float | None
    hours_at_most: float | None
    patch: ProcedureEvent | None  # a blood patch after that puncture
    diagnosed: bool  # a post-puncture diagnosis proves a puncture (SPEC §2), dated or not
    diagnosis: ProcedureEvent | None  # the oldest dated one, standing for an unrecorded puncture
    thresholds: Thresholds
    now: datetime
    repeat_group: Callable[[str], str]  # which studies repeat each other (imaging.yaml)
    roles: Mapping[str, frozenset[str]]  # study type -> its roles (imaging.yaml)
    urgent: frozenset[
        str
    ]  # red flags, thunderclap, altered mental status (Knowledge.urgent_findings)

    def has_role(self, study_type: str, role: str) -> bool:
        return role in self.roles.get(study_type, frozenset())

    def has(self, group: str) -> bool:
        return bool(self.kinds & self.groups[group])

    def studies_within(self, days: float) -> list[PriorStudy]:
        oldest = self.now - timedelta(days=days)
        return [s for s in self.patient.studies if s.at.at >= oldest]


def _initial_imaging(s: Situation) -> PriorStudy | None:
    """The most recent MRI head or spine within the SIH look-back (SPEC §2)."""
    studies = s.studies_within(s.thresholds.sih_lookback_days)
    return next((p for p in studies if s.has_role(p.study_type, "sih-initial-imaging")), None)


def _dsm_since_puncture(s: Situation) -> PriorStudy | None:
    if s.puncture is None:
        return None
    return next(
        (
            p
            for p in s.patient.studies
            if s.has_role(p.study_type, "dsm") and p.at.at >= s.puncture.at.at
        ),
        None,
    )


def _ct_head_within_hours(s: Situation) -> PriorStudy | None:
    """A CT head without contrast done within `thunderclap_ct_hours` (SPEC §2: the window in which a
    CT excludes a subarachnoid haemorrhage)."""
    oldest = s.now - timedelta(hours=s.thresholds.thunderclap_ct_hours)
    return next(
        (
            p
            for p in s.patient.studies
            if s.has_role(p.study_type, "haemorrhage-ct") and p.at.at >= oldest
        ),
        None,
    )


def _repeated(s: Situation) -> PriorStudy | None:
    """An MRI of the drafted order's group already done within the SIH look-back."""
    if not s.has_role(s.order.study_type, "repeatable-mri"):
        return None
    group = s.repeat_group(s.order.study_type)
    studies = s.studies_within(s.thresholds.sih_lookback_days)
    return next((p for p in studies if s.repeat_group(p.study_type) == group), None)


def _headache_since(s: Situation) -> bool:
    """A new or different headache after the patch (SPEC §2, seed 000): the order's own headache
    reason (stated now) or a finding dated after the patch, and nothing since that says the headache
    is still orthostatic or a leak (that is a failed patch, the persistent pathway)."""
    if s.patch is None:
        return False
    leak = s.groups["intracranial_hypotension"]
    since = [f for f in s.findings if f.at is None or f.at.at > s.patch.at.at]
    reason = s.reason.kinds()
    if reason & leak or any(f.kind in leak and f.at is not None for f in since):
        return False
    if reason & s.groups["headache_evidence"]:
        return True
    return any(f.kind in s.groups["headache_evidence"] and f.at is not None for f in since)


def _reason_not_headache(s: Situation) -> bool:
    """The order states a reason recognised as not headache-related (SPEC §2): no headache and no
    red flag in it, and understood: a standard code, a known other indication (multiple sclerosis,
    back pain, trauma), or every word accounted for. A reason the service cannot interpret is doubt,
    not a non-headache reason."""
    kinds = s.reason.kinds()
    groups = s.groups
    return (
        s.reason.stated
        and not kinds & (groups["headache_evidence"] | s.urgent | groups["obstetric_red_flags"])
        and (
            s.reason.coded
            or bool(kinds & groups["other_indications"])
            or not s.reason.uninterpreted
        )
    )


def _uninterpreted(s: Situation) -> list[str]:
    """Every word the decision reads and no rule accounts for: the order's, then the record's."""
    obstetric = s.has("obstetric_context")
    record = [
        word
        for unread in s.patient.unread
        if obstetric or not unread.obstetric_only
        for word in unread.words
    ]
    return list(dict.fromkeys([*s.reason.uninterpreted, *record]))


def _straddles(s: Situation) -> bool:
    """The last puncture's time is an interval (a date only, no offset) that lies partly within the
    acute window and partly beyond it: neither acute nor persistent can be said (SPEC §2)."""
    window = s.thresholds.acute_window_hours
    return (
        s.hours is not None and s.hours_at_most is not None and s.hours <= window < s.hours_at_most
    )


def _obstetric_red_flag(s: Situation) -> bool:
    """A red flag only in a pregnant or postpartum patient (severe-range pressure, hypertension in
    pregnancy, a severe feature of pre-eclampsia: ACOG Practice Bulletin 222, 2020)."""
    return s.has("obstetric_context") and s.has("obstetric_red_flags")


def _diagnosis_hours(s: Situation) -> float | None:
    return None if s.diagnosis is None else hours_between(s.diagnosis.at.at, s.now)


ANSWERS: dict[str, Callable[[Situation], bool]] = {
    "child": lambda s: (
        s.patient.age_years is not None and s.patient.age_years < s.thresholds.adult_age_years
    ),
    "reason-not-headache": _reason_not_headache,
    "headache-evidence": lambda s: s.has("headache_evidence"),
    "thunderclap": lambda s: s.has("thunderclap"),
    "altered-mental-status": lambda s: s.has("altered_mental_status"),
    "red-flag": lambda s: s.has("red_flags"),
    "obstetric-red-flag": _obstetric_red_flag,
    "possible-pre-eclampsia": lambda s: s.has("obstetric_context") and s.has("pre_eclampsia_signs"),
    "intracranial-hypotension": lambda s: s.has("intracranial_hypotension"),
    "leak-evidence": lambda s: s.has("intracranial_hypotension"),
    "puncture-context": lambda s: (
        s.puncture is not None
        or bool(s.patient.uncertain_punctures)
        or s.diagnosed
        or bool(s.patient.blood_patches)
        or s.has("intracranial_hypotension")
    ),
    "blood-patch": lambda s: s.patch is not None,
    "blood-patch-then-headache": _headache_since,
    "uncertain-puncture": lambda s: bool(s.patient.uncertain_punctures) or _straddles(s),
    "puncture-within-acute-window": lambda s: (
        s.hours_at_most is not None and s.hours_at_most <= s.thresholds.acute_window_hours
    ),
    "puncture-beyond-acute-window": lambda s: (
        s.hours is not None and s.hours > s.thresholds.acute_window_hours
    ),
    "puncture-diagnosis": lambda s: s.diagnosed,
    "initial-imaging-done": lambda s: _initial_imaging(s) is not None,
    "dsm-done-since-puncture": lambda s: _dsm_since_puncture(s) is not None,
    "repeat-of-recent-mri": lambda s: _repeated(s) is not None,
    "ct-head-done-within-hours": lambda s: _ct_head_within_hours(s) is not None,
    "puncture-diagnosis-beyond-acute-window": lambda s: (
        (hours := _diagnosis_hours(s)) is not None
        and s.thresholds.acute_window_hours < hours <= s.thresholds.lookback_days * 24
    ),
}


if set(ANSWERS) != set(PREDICATES):  # the vocabulary knowledge/predicates.py names, exactly
    raise ImportError(f"decide.py answers {sorted(set(ANSWERS) ^ set(PREDICATES))} wrongly")


def _holds(condition: str, s: Situation) -> bool:
    """Whether a precedence or variant condition holds: its test is read from its words once (the
    conditions are the knowledge's, a bounded set) instead of on every call."""
    test = _TESTS.get(condition)
    if test is None:
        test = _TESTS[condition] = _test(condition)
    return test(s)


def _test(condition: str) -> Callable[[Situation], bool]:
    if condition.startswith("not "):
        negated = _test(condition[4:])
        return lambda s: not negated(s)
    if condition.startswith(IN_GROUP):  # any finding of a group rules.yaml defines
        group = condition[len(IN_GROUP) :]
        return lambda s: s.has(group)
    return ANSWERS[condition]


_TESTS: dict[str, Callable[[Situation], bool]] = {}


def _diagnosis_event(
    findings: list[Finding], puncture_kinds: frozenset[str]
) -> ProcedureEvent | None:
    """The oldest dated post-puncture diagnosis: its onset is a lower bound of the time since the
    puncture it proves (SPEC §2)."""
    dated = [(f.at, f) for f in findings if f.kind in puncture_kinds and f.at is not None]
    if not dated:
        return None
    at, oldest = min(dated, key=lambda pair: pair[0].at)
    return ProcedureEvent(oldest.description, at, lower_bound=True)


def situation(
    order: ImagingOrder,
    reason: OrderReason,
    patient: PatientFacts,
    k: Knowledge,
    t: Thresholds,
    now: datetime,
) -> Situation:
    groups = k.finding_groups
    puncture = patient.punctures[0] if patient.punctures else None
    # A plain headache recorded before the puncture led to it: its reason, not its complication
    # (SPEC §2). Durable diagnoses (intracranial hypotension, leaks) and red flags always count.
    before = groups["headache_evidence"] - groups["durable"] - groups["thunderclap"]
    findings = [
        f
        for f in patient.findings
        if not (
            puncture is not None
            and f.kind in before
            and f.at is not None
            and f.at.at < puncture.at.first
        )
    ] + reason.findings
    patch = next(
        (p for p in patient.blood_patches if puncture is None or p.at.at >= puncture.at.at), None
    )
    evidence = groups["puncture_evidence"]
    diagnosed = puncture is None and any(f.kind in evidence for f in findings)
    diagnosis = _diagnosis_event(patient.findings, evidence) if diagnosed else None
    return Situation(
        order=order,
        reason=reason,
        patient=patient,
        findings=findings,
        kinds=frozenset(f.kind for f in findings),
        groups=groups,
        puncture=puncture,
        hours=max(0.0, hours_between(puncture.at.at, now)) if puncture else None,
        hours_at_most=max(0.0, hours_between(puncture.at.first, now)) if puncture else None,
        patch=patch,
        diagnosed=diagnosed,
        diagnosis=diagnosis,
        thresholds=t,
        now=now,
        repeat_group=k.repeat_group,
        roles=k.study_roles,
        urgent=k.urgent_findings,
    )


def decide(
    order: ImagingOrder,
    reason: OrderReason,
    patient: PatientFacts,
    k: Knowledge,
    t: Thresholds,
    now: datetime,
) -> Decision | None:
    """The scenario for this order, or None when the service should stay silent."""
    s = situation(order, reason, patient, k, t, now)
    scenario = next(
        (r.then for r in k.rules.precedence if all(_holds(c, s) for c in r.when)), "silent"
    )
    if scenario == "silent":
        return None
    puncture, hours = s.puncture, s.hours
    rules = k.rules.scenarios[scenario]
    if puncture is None and rules.puncture_from_diagnosis and s.diagnosis is not None:
        puncture, hours = s.diagnosis, _diagnosis_hours(s)
    chosen = _named(scenario)
    variant = next((v for v in k.rules.scenarios[chosen].variants if _holds(v, s)), None)
    rating = k.rating(chosen, order.study_type, variant)
    uninterpreted = _uninterpreted(s)
    obstetric = s.groups["obstetric_red_flags"] if s.has("obstetric_context") else frozenset()
    watched = s.urgent | obstetric
    return Decision(
        order=order,
        scenario=chosen,
        rating=rating,
        hours_since_puncture=None if hours is None else round(max(0.0, hours), 1),
        puncture=puncture,
        blood_patch=s.patch,
        evidence=[f for f in s.findings if f.kind in s.groups["headache_evidence"]],
        red_flags=[f for f in s.findings if f.kind in watched],
        age_known=patient.age_years is not None,
        uninterpreted=uninterpreted,
        variant=variant,
        understood=not (uninterpreted and _discourages(k, chosen, order, variant, rating)),
        pregnant=s.has("pregnant") and not s.has("delivered"),
        prior=_prior(variant, s),
    )


def _named(scenario: str) -> str:
    """A shipped scenario as its `Scenario` name (tests compare with `is`); a site's own as is."""
    return Scenario(scenario) if scenario in Scenario._value2member_map_ else scenario


def _discourages(
    k: Knowledge, scenario: str, order: ImagingOrder, variant: str | None, rating: RatingCell
) -> bool:
    """Whether the card for this order would discourage imaging: it rates the drafted study usually
    not appropriate, warns, or offers a cancel or a replace (never in a never-discourage scenario)."""
    if k.rules.scenarios[scenario].never_discourage:
        return False
    plan = k.card_plan(scenario, order.study_type, variant)
    return (
        rating.value is Rating.USUALLY_NOT_APPROPRIATE
        or plan.indicator == "warning"
        or any(p.kind != "add" for p in plan.suggestions)
    )


def _prior(variant: str | None, s: Situation) -> PriorStudy | None:
    """The earlier study a card should name: the one repeated, the DSM done, else the initial MRI."""
    if variant == "repeat-of-recent-mri":
        return _repeated(s)
    if variant == "dsm-done-since-puncture":
        return _dsm_since_puncture(s)
    if variant == "ct-head-done-within-hours":
        return _ct_head_within_hours(s)
    return _initial_imaging(s)
