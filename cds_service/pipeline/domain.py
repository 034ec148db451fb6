"""The domain types every stage of the pipeline shares (resolve → orders → facts → decide → render):
what the record says (procedures, findings, studies done, words not read), what a draft order is and
states, and what was decided for it. Plain frozen dataclasses: no behaviour beyond reading them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cds_service.fhir.time import Instant
from cds_service.knowledge import RatingCell


@dataclass(frozen=True)
class PriorStudy:
    study_type: str
    description: str
    at: Instant
    conclusion: str | None = None
    findings: frozenset[str] = frozenset()  # what the report's conclusion states (finding keys)


@dataclass(frozen=True)
class ProcedureEvent:
    description: str
    at: Instant
    # True when only a lower bound is known (a post-puncture diagnosis standing for the puncture).
    lower_bound: bool = False
    study_type: str | None = None  # set when the procedure is also an imaging study (myelography)

    @property
    def exact(self) -> bool:
        return self.at.is_exact and not self.lower_bound


@dataclass(frozen=True)
class Finding:
    kind: str
    description: str
    at: Instant | None
    # "problem list", "observation", "imaging report", "order reason", "order note", "order name"
    origin: str


@dataclass(frozen=True)
class UnreadWords:
    """Words of a recent record text that no rule accounts for (SPEC §2, fail-safe rule): while any
    remain, no card may discourage imaging. `obstetric_only` words (an abdominal exam) count only in
    a pregnant or postpartum patient."""

    words: tuple[str, ...]
    origin: str  # "problem list" or "observation"
    obstetric_only: bool = False


@dataclass(frozen=True)
class PatientFacts:
    age_years: int | None
    punctures: list[ProcedureEvent] = field(default_factory=list)  # most recent first
    uncertain_punctures: list[str] = field(default_factory=list)  # descriptions: time unknown
    blood_patches: list[ProcedureEvent] = field(default_factory=list)  # most recent first
    findings: list[Finding] = field(default_factory=list)
    studies: list[PriorStudy] = field(default_factory=list)  # imaging done, most recent first
    unread: list[UnreadWords] = field(default_factory=list)
    # What reading the record noticed, for the shell to log and count (never logged here: pure).
    anomalies: tuple[str, ...] = ()

    def kinds(self) -> set[str]:
        return {f.kind for f in self.findings}


@dataclass(frozen=True)
class ImagingOrder:
    reference: str  # "ServiceRequest/<id>"
    study_type: str
    description: str
    raw: dict[str, Any]


@dataclass(frozen=True)
class OrderReason:
    """The reasons an order states. `stated` is False when it states none we can read: the patient's
    record then supplies the headache evidence (SPEC §2)."""

    stated: bool
    findings: list[Finding]
    uninterpreted: list[str] = field(default_factory=list)
    # A stated reason carries an ICD-10-CM or SNOMED CT code: understood by its code (SPEC §2).
    coded: bool = False

    def kinds(self) -> set[str]:
        return {f.kind for f in self.findings}


@dataclass(frozen=True)
class Decision:
    order: ImagingOrder
    scenario: str  # a scenario of the knowledge (a `Scenario` member when it is a shipped one)
    rating: RatingCell
    hours_since_puncture: float | None
    puncture: ProcedureEvent | None
    blood_patch: ProcedureEvent | None
    evidence: list[Finding]  # the headache evidence relied on
    red_flags: list[Finding]
    age_known: bool
    # Words of the order's reason or note, or of a recent record text, that no rule accounts for
    # (SPEC §2, fail-safe rule): while there are any, no card discourages imaging or rates the order.
    uninterpreted: list[str] = field(default_factory=list)
    variant: str | None = None  # the scenario variant that applies (rules.yaml `variants`)
    # False when the card would discourage imaging (a usually-not-appropriate rating, a cancel or a
    # replace) while words remain uninterpreted: the card is then only information and the order is
    # not rated (SPEC §2, fail-safe rule).
    understood: bool = True
    # Pregnant now, not after delivery: no gadolinium, no radiation to the spine suggested (SPEC §2).
    pregnant: bool = False
    prior: PriorStudy | None = None  # the earlier study the decision relied on, for the card
