"""The shape of the knowledge files (hooks/<knowledge>/*.yaml) as pydantic models: a field typo or a
value of the wrong kind is refused when the files load."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Scenario(StrEnum):
    """Names for the scenarios the shipped knowledge defines (tests, analytics ordering). The
    knowledge itself defines its scenarios (rules.yaml `scenarios`): a site may add one in YAML,
    whose code is then a plain string everywhere."""

    PDPH_ACUTE = "pdph-acute"
    PDPH_ACUTE_RED_FLAGS = "pdph-acute-red-flags"
    PDPH_PERSISTENT = "pdph-persistent"
    SIH = "sih"
    POST_BLOOD_PATCH = "post-blood-patch"
    ALTERED_MENTAL_STATUS = "altered-mental-status"
    THUNDERCLAP = "thunderclap"
    SIH_AFTER_INITIAL_IMAGING = "sih-after-initial-imaging"


class Rating(StrEnum):
    USUALLY_APPROPRIATE = "usually-appropriate"
    MAY_BE_APPROPRIATE = "may-be-appropriate"
    USUALLY_NOT_APPROPRIATE = "usually-not-appropriate"
    NOT_RATED = "not-rated"


RATING_ABBREVIATIONS = {
    "UA": Rating.USUALLY_APPROPRIATE,
    "MBA": Rating.MAY_BE_APPROPRIATE,
    "UNA": Rating.USUALLY_NOT_APPROPRIATE,
    "NR": Rating.NOT_RATED,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeEntry(_Strict):
    """One code. An ICD-10-CM code names its whole subtree (I60 is I60 and every code under it)."""

    system: str
    code: str
    display: str | None = None
    source: str


class Concept(_Strict):
    display: str
    codes: list[CodeEntry] = Field(default_factory=list)
    text: list[str] = Field(default_factory=list)


class ProcedureConcept(Concept):
    """A kind of procedure: its `role` is what it is to the engine (knowledge/predicates.py,
    PROCEDURE_ROLES); `finding` is the finding a recent one makes (a delivery: postpartum)."""

    role: str
    finding: str | None = None


class MeasurementConcept(_Strict):
    """The codes (and words) of one kind of measured Observation, read by its value."""

    codes: list[CodeEntry]
    text: list[str] = Field(default_factory=list)


class ThresholdConcept(MeasurementConcept):
    """A measurement whose value past its threshold (rules.yaml) makes a finding: required, so a
    fever or a low coma score can never go unread because the name was left out."""

    finding: str


class PressureFindings(_Strict):
    """The findings a blood pressure makes: at or above the emergency thresholds in any adult, at or
    above the severe-range thresholds (a red flag only in pregnancy or postpartum)."""

    emergency: str
    severe_range: str


class BloodPressureConcept(_Strict):
    """Blood pressure Observations: a panel (`codes`) holding systolic and diastolic components, or a
    systolic or diastolic Observation on its own; `text` names a flowsheet row read as "168/112"."""

    codes: list[CodeEntry]
    systolic: list[CodeEntry]
    diastolic: list[CodeEntry]
    text: list[str] = Field(default_factory=list)
    findings: PressureFindings


class LanguageRules(_Strict):
    """Cue words for reading clinicians' text (cds_service/knowledge/language.py applies them)."""

    negation_before: list[str]
    negation_after: list[str]
    clause_terminators: list[str]
    filler_words: list[str]
    # Parts of standard displays that carry no clinical meaning (SPEC §2: "Headache (finding)").
    accounted_patterns: list[str] = Field(default_factory=list)


class ReadObservations(_Strict):
    """Which exam or vital-sign Observations written in words the fail-safe rule reads (SPEC §2), by
    the name of what was observed: `always`, and `obstetric` only in a pregnant or postpartum
    patient (the abdomen). An unrelated flowsheet row (skin, say) is not read."""

    always: list[str]
    obstetric: list[str] = Field(default_factory=list)


class ValueSetsFile(_Strict):
    systems: dict[str, str]
    system_aliases: dict[str, str] = Field(default_factory=dict)
    language: LanguageRules
    procedures: dict[str, ProcedureConcept]
    findings: dict[str, Concept]
    body_temperature: ThresholdConcept = Field(alias="body-temperature")
    glasgow_coma_score: ThresholdConcept = Field(alias="glasgow-coma-score")
    blood_pressure: BloodPressureConcept = Field(alias="blood-pressure")
    read_observations: ReadObservations = Field(alias="read-observations")


class Study(_Strict):
    name: str
    rating_row: str
    rrl: str | None = None
    leak_localizing: bool = False
    # Studies of one group repeat each other (every MRI spine region is "MRI spine", SPEC §2);
    # unset: the study type itself.
    repeat_group: str | None = None
    # What the rules ask of a study done or drafted (SPEC §2, imaging history): the initial imaging of
    # suspected SIH, a DSM, the CT head that excludes a haemorrhage, a myelography (a puncture when no
    # headache was recorded before it), an MRI whose repeat is information.
    roles: list[
        Literal["sih-initial-imaging", "dsm", "haemorrhage-ct", "myelography", "repeatable-mri"]
    ] = Field(default_factory=list)


class OrderableCode(_Strict):
    text: str
    coding: list[CodeEntry] = Field(default_factory=list)


class Orderable(_Strict):
    study: str | None = None
    short: str  # how a suggestion label names it ("DSM of the complete spine")
    imaging: bool = True  # created orders get the imaging category
    code: OrderableCode
    # In pregnancy (SPEC §2: no gadolinium, no ionising radiation to the spine): the orderable
    # suggested instead, or none at all.
    in_pregnancy: str | None = None
    avoid_in_pregnancy: bool = False


class StudyCode(_Strict):
    system: str
    code: str
    study: str
    display: str | None = None
    source: str


class ImagingText(_Strict):
    """Words for the parts of an order's description: modality, region, contrast, each a named list
    of regular expressions that `classify` rules compose as "modality.ct", "region.head"..."""

    modality: dict[str, list[str]]
    region: dict[str, list[str]]
    contrast: dict[Literal["without-and-with", "without", "with"], list[str]]


class AtLeast(_Strict):
    parts: list[str]
    count: int = Field(ge=1)


class ClassifyRule(_Strict):
    """One line of the text classifier: when the parts are found, the study (imaging.yaml
    `classify`). `{contrast}` in `study` is the contrast read, else `contrast_default`."""

    all: list[str] = Field(default_factory=list)
    any: list[str] = Field(default_factory=list)
    none: list[str] = Field(default_factory=list)
    at_least: AtLeast | None = None
    study: str
    contrast_default: str | None = None
    # The studies sent by code only `from` these study types (imaging.yaml `refine`).
    from_: list[str] = Field(default_factory=list, alias="from")

    def parts_named(self) -> list[str]:
        extra = self.at_least.parts if self.at_least else []
        return [*self.all, *self.any, *self.none, *extra]

    def studies(self) -> list[str]:
        if "{contrast}" not in self.study:
            return [self.study]
        values = ["without-and-with", "without", "with", self.contrast_default or "unspecified"]
        return [self.study.replace("{contrast}", v) for v in values]


class ImagingFile(_Strict):
    # The category every created imaging order carries (FHIR ServiceRequest.category).
    order_category: CodeEntry
    studies: dict[str, Study]
    orderables: dict[str, Orderable]
    codes: list[StudyCode]
    text: ImagingText
    classify: list[ClassifyRule]
    refine: list[ClassifyRule] = Field(default_factory=list)


class Thresholds(_Strict):
    acute_window_hours: float = Field(gt=0)
    lookback_days: float = Field(gt=0)
    fever_celsius: float = Field(gt=35, lt=43)
    observation_window_hours: float = Field(gt=0)
    # A Glasgow coma score total below this is altered mental status (15 is fully alert).
    gcs_altered_below: int = Field(ge=4, le=15)
    adult_age_years: int = Field(gt=0)
    # How far back an MRI head or spine counts as the initial imaging of suspected SIH (SPEC §2).
    sih_lookback_days: float = Field(gt=0)
    # A suggestion never recommends a study of a type completed this recently (SPEC §2).
    recent_study_days: float = Field(gt=0)
    # A delivery this recent makes the patient postpartum (SPEC §2: "within 6 weeks after delivery").
    postpartum_days: float = Field(gt=0)
    # Severe-range blood pressure in pregnancy or postpartum (ACOG Practice Bulletin 222, 2020) and a
    # hypertensive emergency in any adult (ACC/AHA 2017): at or above either number.
    severe_systolic_pregnancy: float = Field(gt=0)
    severe_diastolic_pregnancy: float = Field(gt=0)
    emergency_systolic: float = Field(gt=0)
    emergency_diastolic: float = Field(gt=0)
    # A CT head without contrast this recent excludes a subarachnoid haemorrhage (SPEC §2, thunderclap).
    thunderclap_ct_hours: float = Field(gt=0)


class SourceInfo(_Strict):
    label: str
    url: str
    topic_system: str


class RatingCell(_Strict):
    rating: Literal["UA", "MBA", "UNA", "NR"]
    source: Literal["S", "T", "H", "J"] | None = None
    note: str | None = None

    @property
    def value(self) -> Rating:
        return RATING_ABBREVIATIONS[self.rating]

    @model_validator(mode="after")
    def _rated_cells_cite_a_source(self) -> RatingCell:
        if self.rating != "NR" and self.source is None:
            raise ValueError(f"rating {self.rating} needs a source (S, T, H or J)")
        return self


class SuggestionPlan(_Strict):
    kind: Literal["cancel", "replace", "add"]
    orderables: list[str] = Field(default_factory=list)
    # Study types: the suggestion is left out when any of them is among the draft orders (the
    # altered-mental-status card adds a CT head only when no head imaging is drafted).
    unless_drafted: list[str] = Field(default_factory=list)
    # A threshold (hours) within which a study done counts as done, instead of `recent_study_days`.
    recent_threshold: Literal["thunderclap_ct_hours"] | None = None

    @model_validator(mode="after")
    def _creating_kinds_name_orderables(self) -> SuggestionPlan:
        if (self.kind == "cancel") == bool(self.orderables):
            raise ValueError(
                f"a {self.kind} suggestion {'must' if self.kind != 'cancel' else 'cannot'}"
                " name orderables"
            )
        return self


class CardPlanOverride(_Strict):
    card: Literal["show", "confirm"] | None = None
    indicator: Literal["info", "warning", "critical"] | None = None
    summary: str | None = None
    suggestions: list[SuggestionPlan] | None = None


class ScenarioVariant(_Strict):
    """How a scenario reads when one more predicate holds (e.g. `pdph-persistent` after a DSM already
    done): ratings and card fields that replace the scenario's own."""

    ratings: dict[str, RatingCell] = Field(default_factory=dict)  # per rating row
    rating: RatingCell | None = None  # every row
    indicator: Literal["info", "warning", "critical"] | None = None
    summary: str | None = None
    why: str | None = None
    what: str | None = None
    suggestions: list[SuggestionPlan] | None = None
    by_row: dict[str, CardPlanOverride] = Field(default_factory=dict)


class ScenarioRules(_Strict):
    title: str
    # The card's detail: one line of why, one of what to do (cards.yaml placeholders).
    why: str
    what: str
    # Priority of the orders the card creates: urgent work-ups are `urgent` (SPEC §4).
    priority: Literal["routine", "urgent", "asap", "stat"] = "routine"
    never_discourage: bool = False
    # A card about the patient (an urgent work-up) appears once per response, naming every draft order
    # it concerns; a card about one order (cancel, replace) names that order (SPEC §4).
    about: Literal["order", "patient"] = "order"
    # With no dated puncture, the oldest post-dural-puncture diagnosis stands for it (its onset a
    # lower bound of the time since the puncture: "at least N hours", SPEC §2).
    puncture_from_diagnosis: bool = False
    indicator: Literal["info", "warning", "critical"]
    summary: str
    advice: str
    next_steps: str | None = None
    watch_for: str | None = None
    suggestions: list[SuggestionPlan]
    by_row: dict[str, CardPlanOverride] = Field(default_factory=dict)
    leak_localizing: CardPlanOverride | None = None
    # Keyed by a decide.py predicate, tried in order: the first that holds applies.
    variants: dict[str, ScenarioVariant] = Field(default_factory=dict)
    override_reasons: list[str]


class PrecedenceRule(_Strict):
    """One line of the scenario precedence: when every condition holds, `then` decides."""

    when: list[str]
    then: str  # a scenario of `scenarios`, or "silent"


class RulesFile(_Strict):
    # Raised by the informaticist with every change; shown with the content hash on every card.
    version: str = Field(min_length=1, max_length=32)
    thresholds: Thresholds
    source: SourceInfo
    rating_sources: dict[Literal["S", "T", "H", "J"], str]
    # Which findings play which part in the decision: the groups the engine reads by name
    # (knowledge/predicates.py, FINDING_GROUPS) and any a precedence line asks for ("finding in X").
    finding_groups: dict[str, list[str]]
    precedence: list[PrecedenceRule] = Field(min_length=1)
    ratings: dict[str, dict[str, RatingCell]]
    override_reason_system: str
    override_reasons: dict[str, str]
    scenarios: dict[str, ScenarioRules]


class CardLabels(_Strict):
    why: str
    what_to_do: str
    link: str
    hours: str
    hours_at_least: str
    puncture: str
    puncture_from_diagnosis: str
    no_puncture: str
    prior_study: str
    prior_study_concluded: str
    no_prior_study: str
    uninterpreted: str
    doubt_summary: str
    and_word: str
    red_flags_word: str
    pregnancy: str
    age_unknown: str
    radiation_unknown: str


class SuggestionLabels(_Strict):
    cancel: str
    replace: str
    add: str
    cancel_proposed_elsewhere: str
    cancel_already_drafted: str


class ExplainLabels(_Strict):
    """The explanation page's headings (cds_service/api/explain.py)."""

    next_steps: str
    watch_for: str
    ratings: str
    study: str
    rating: str
    source: str
    radiation: str
    sources: str
    no_rating: str
    footer: str


class CardsFile(_Strict):
    rating_phrases: dict[Rating, str]
    labels: CardLabels
    suggestions: SuggestionLabels
    explain: ExplainLabels


class CardPlan(BaseModel):
    """What the card for one drafted study in one scenario looks like (defaults merged with overrides)."""

    model_config = ConfigDict(frozen=True)

    card: Literal["show", "confirm"]
    indicator: Literal["info", "warning", "critical"]
    summary: str
    why: str
    what: str
    suggestions: list[SuggestionPlan]


class LexiconConcept(_Strict):
    phrases: list[str] = Field(default_factory=list)
    exclude: dict[str, str] = Field(
        default_factory=dict
    )  # head phrase -> why it is not the finding


class LexiconFile(_Strict):
    """lexicon.yaml: phrases read from a terminology release for the concepts of valuesets.yaml
    (generated by tools/build_lexicon.py)."""

    source: str
    concepts: dict[str, LexiconConcept] = Field(default_factory=dict)
