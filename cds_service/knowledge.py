"""Clinical knowledge (value sets, studies, ratings, card texts) loaded from YAML under hooks/ and
validated at start-up, so a broken rule file stops the service before it answers anyone."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class Scenario(StrEnum):
    PDPH_ACUTE = "pdph-acute"
    PDPH_ACUTE_RED_FLAGS = "pdph-acute-red-flags"
    PDPH_PERSISTENT = "pdph-persistent"
    SIH = "sih"
    POST_BLOOD_PATCH = "post-blood-patch"
    ALTERED_MENTAL_STATUS = "altered-mental-status"


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

# A text match preceded by one of these (within a few words) is a negated mention, not a finding.
NEGATION = re.compile(
    r"\b(no|not|without|denies|denied|negative for|absence of|free of|r/o|rule out)\b"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeEntry(_Strict):
    system: str
    code: str
    display: str | None = None
    source: str
    prefix: bool = False


class Concept(_Strict):
    display: str
    codes: list[CodeEntry] = Field(default_factory=list)
    text: list[str] = Field(default_factory=list)


class TemperatureConcept(_Strict):
    codes: list[CodeEntry]
    text: list[str] = Field(default_factory=list)


class ValueSetsFile(_Strict):
    systems: dict[str, str]
    procedures: dict[str, Concept]
    findings: dict[str, Concept]
    body_temperature: TemperatureConcept = Field(alias="body-temperature")


class Study(_Strict):
    name: str
    rating_row: str
    rrl: str | None = None
    leak_localizing: bool = False


class OrderableCode(_Strict):
    text: str
    coding: list[CodeEntry] = Field(default_factory=list)


class Orderable(_Strict):
    study: str | None = None
    code: OrderableCode


class StudyCode(_Strict):
    system: str
    code: str
    study: str
    source: str


class ImagingText(_Strict):
    modality: dict[Literal["ct", "mri", "myelography", "dsm", "other"], list[str]]
    region: dict[
        Literal[
            "head", "spine-cervical", "spine-thoracic", "spine-lumbar", "spine-complete", "spine"
        ],
        list[str],
    ]
    contrast: dict[Literal["without-and-with", "without", "with"], list[str]]


class ImagingFile(_Strict):
    studies: dict[str, Study]
    orderables: dict[str, Orderable]
    codes: list[StudyCode]
    text: ImagingText


class Thresholds(_Strict):
    acute_window_hours: float = Field(gt=0)
    lookback_days: float = Field(gt=0)
    fever_celsius: float = Field(gt=35, lt=43)
    observation_window_hours: float = Field(gt=0)
    adult_age_years: int = Field(gt=0)


class SourceInfo(_Strict):
    label: str
    url: str
    topic_system: str


class RatingCell(_Strict):
    rating: Literal["UA", "MBA", "UNA", "NR"]
    source: Literal["S", "T", "J"] | None = None
    note: str | None = None

    @property
    def value(self) -> Rating:
        return RATING_ABBREVIATIONS[self.rating]

    @model_validator(mode="after")
    def _rated_cells_cite_a_source(self) -> RatingCell:
        if self.rating != "NR" and self.source is None:
            raise ValueError(f"rating {self.rating} needs a source (S, T or J)")
        return self


class SuggestionPlan(_Strict):
    kind: Literal["cancel", "replace", "add"]
    orderables: list[str] = Field(default_factory=list)

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


class ScenarioRules(_Strict):
    title: str
    never_discourage: bool = False
    indicator: Literal["info", "warning", "critical"]
    summary: str
    advice: str
    next_steps: str | None = None
    watch_for: str | None = None
    suggestions: list[SuggestionPlan]
    by_row: dict[str, CardPlanOverride] = Field(default_factory=dict)
    leak_localizing: CardPlanOverride | None = None
    override_reasons: list[str]


class RulesFile(_Strict):
    thresholds: Thresholds
    source: SourceInfo
    rating_sources: dict[Literal["S", "T", "J"], str]
    ratings: dict[Scenario, dict[str, RatingCell]]
    override_reason_system: str
    override_reasons: dict[str, str]
    scenarios: dict[Scenario, ScenarioRules]


class CardPlan(BaseModel):
    """What the card for one drafted study in one scenario looks like (defaults merged with overrides)."""

    model_config = ConfigDict(frozen=True)

    card: Literal["show", "confirm"]
    indicator: Literal["info", "warning", "critical"]
    summary: str
    suggestions: list[SuggestionPlan]


class Matcher:
    """Recognises a concept from codings (exact system+code, or under a code prefix) or, failing that,
    from free text with a negation guard."""

    def __init__(self, codes: list[CodeEntry], text: list[str], systems: dict[str, str]) -> None:
        self.exact: set[tuple[str, str]] = set()
        self.prefixes: list[tuple[str, str]] = []
        for entry in codes:
            system = canonical_system(systems.get(entry.system, entry.system))
            key = (system, normalise_code(system, entry.code))
            if entry.prefix:
                self.prefixes.append(key)
            else:
                self.exact.add(key)
        self.patterns = [re.compile(p, re.IGNORECASE) for p in text]

    def matches_code(self, system: str, code: str) -> bool:
        system = canonical_system(system)
        code = normalise_code(system, code)
        if (system, code) in self.exact:
            return True
        return any(system == s and code.startswith(p) for s, p in self.prefixes)

    def matches_text(self, text: str) -> bool:
        for pattern in self.patterns:
            for match in pattern.finditer(text):
                preceding = text[max(0, match.start() - 30) : match.start()].lower()
                if not NEGATION.search(preceding):
                    return True
        return False


NO_KEYS: frozenset[str] = frozenset()
CACHE_SIZE = 4096
K = TypeVar("K")


class ConceptIndex(Mapping[str, Matcher]):
    """The matchers of one value-set family (procedures, findings...) compiled for lookup, so matching
    a coding costs one dict lookup whatever the number of concepts: (system, code) → the keys of the
    concepts listing it, plus the few prefix codes per system. Text is first screened by one regular
    expression joining every concept's patterns: most words in a record (chronic problems, vital
    signs) match none, and then no per-concept pattern needs trying. Answers for codes and texts are
    memoised (bounded): records repeat the same codes and displays over and over. The answers are
    those of asking every Matcher in turn (tests/test_perf_matching.py)."""

    def __init__(self, matchers: Mapping[str, Matcher]) -> None:
        self._matchers = dict(matchers)
        exact: dict[tuple[str, str], set[str]] = {}
        prefixes: dict[str, list[tuple[str, str]]] = {}
        for key, matcher in self._matchers.items():
            for pair in matcher.exact:
                exact.setdefault(pair, set()).add(key)
            for system, prefix in matcher.prefixes:
                prefixes.setdefault(system, []).append((prefix, key))
        self._exact = {pair: frozenset(keys) for pair, keys in exact.items()}
        self._prefixes = prefixes
        self._screen = _screen([p for m in self._matchers.values() for p in m.patterns])
        self._text_cache: dict[str, frozenset[str]] = {}
        self._code_cache: dict[tuple[str, str], frozenset[str]] = {}

    def __getitem__(self, key: str) -> Matcher:
        return self._matchers[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._matchers)

    def __len__(self) -> int:
        return len(self._matchers)

    def keys_for_code(self, system: str, code: str) -> frozenset[str]:
        found = self._code_cache.get((system, code))
        if found is not None:
            return found
        canonical = canonical_system(system)
        normalised = normalise_code(canonical, code)
        found = self._exact.get((canonical, normalised), NO_KEYS)
        for prefix, key in self._prefixes.get(canonical, ()):
            if normalised.startswith(prefix) and key not in found:
                found = found | {key}
        _remember(self._code_cache, (system, code), found)
        return found

    def keys_for_text(self, text: str) -> frozenset[str]:
        found = self._text_cache.get(text)
        if found is not None:
            return found
        if self._screen is not None and self._screen.search(text) is None:
            found = NO_KEYS
        else:
            found = frozenset(k for k, m in self._matchers.items() if m.matches_text(text))
        _remember(self._text_cache, text, found)
        return found


def _remember(cache: dict[K, frozenset[str]], key: K, value: frozenset[str]) -> None:
    """Bounded memo: emptied when full, so a stream of distinct texts cannot grow it without end."""
    if len(cache) >= CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _screen(patterns: list[re.Pattern[str]]) -> re.Pattern[str] | None:
    """One case-insensitive expression matching wherever any of `patterns` matches, or None when
    they cannot be joined safely (numbered or named back-references would change meaning)."""
    sources = [p.pattern for p in patterns]
    if not sources or any(re.search(r"\\[1-9]|\(\?P=", s) for s in sources):
        return None
    try:
        return re.compile("|".join(f"(?:{s})" for s in sources), re.IGNORECASE)
    except re.error:
        return None


ICD10_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10")


def normalise_code(system: str, code: str) -> str:
    """ICD-10 codes are compared without their dot and in upper case (EHRs send both forms)."""
    code = code.strip()
    if system in ICD10_SYSTEMS:
        return code.replace(".", "").upper()
    return code


def canonical_system(system: str) -> str:
    """WHO ICD-10 and ICD-10-CM share the codes this service uses; match them as one system."""
    return ICD10_SYSTEMS[0] if system in ICD10_SYSTEMS else system


class Knowledge:
    """Validated, compiled clinical knowledge of one hook service family (a folder under hooks/)."""

    def __init__(self, valuesets: ValueSetsFile, imaging: ImagingFile, rules: RulesFile) -> None:
        self.valuesets = valuesets
        self.imaging = imaging
        self.rules = rules
        systems = valuesets.systems
        self.systems = systems
        self.procedures = ConceptIndex(
            {k: Matcher(c.codes, c.text, systems) for k, c in valuesets.procedures.items()}
        )
        self.findings = ConceptIndex(
            {k: Matcher(c.codes, c.text, systems) for k, c in valuesets.findings.items()}
        )
        self.body_temperature = Matcher(
            valuesets.body_temperature.codes, valuesets.body_temperature.text, systems
        )
        self.temperature = ConceptIndex({"body-temperature": self.body_temperature})
        self.study_by_code = {
            (systems.get(c.system, c.system), c.code): c.study for c in imaging.codes
        }
        self.imaging_text = {
            part: {key: [re.compile(p, re.IGNORECASE) for p in pats] for key, pats in table.items()}
            for part, table in imaging.text.model_dump().items()
        }
        self._card_plans: dict[tuple[Scenario, str], CardPlan] = {}
        _validate_references(self)

    def finding_display(self, key: str) -> str:
        return self.valuesets.findings[key].display

    def rating(self, scenario: Scenario, study_type: str) -> RatingCell:
        return self.rules.ratings[scenario][self.imaging.studies[study_type].rating_row]

    def card_plan(self, scenario: Scenario, study_type: str) -> CardPlan:
        """The plan for one study in one scenario, merged once and then reused (knowledge is frozen)."""
        plan = self._card_plans.get((scenario, study_type))
        if plan is None:
            plan = self._card_plans[(scenario, study_type)] = self._merge_plan(scenario, study_type)
        return plan

    def _merge_plan(self, scenario: Scenario, study_type: str) -> CardPlan:
        rules = self.rules.scenarios[scenario]
        study = self.imaging.studies[study_type]
        override = rules.by_row.get(study.rating_row)
        if override is None and study.leak_localizing:
            override = rules.leak_localizing
        override = override or CardPlanOverride()
        return CardPlan(
            card=override.card or "show",
            indicator=override.indicator or rules.indicator,
            summary=override.summary or rules.summary,
            suggestions=rules.suggestions if override.suggestions is None else override.suggestions,
        )

    def coding_system(self, alias: str) -> str:
        return self.systems.get(alias, alias)


def _validate_references(k: Knowledge) -> None:
    """Cross-file checks: every name a rule uses exists, and the matrix has no hole."""
    studies, orderables = k.imaging.studies, k.imaging.orderables
    rows = {s.rating_row for s in studies.values()}
    for study_code in k.imaging.codes:
        _require(study_code.study in studies, f"imaging code {study_code.code}: unknown study")
    for key, orderable in orderables.items():
        _require(orderable.study is None or orderable.study in studies, f"orderable {key}: study")
    for scenario in Scenario:
        _require(scenario in k.rules.ratings, f"ratings: scenario {scenario} missing")
        _require(scenario in k.rules.scenarios, f"scenarios: scenario {scenario} missing")
        missing = rows - set(k.rules.ratings[scenario])
        _require(not missing, f"ratings[{scenario}]: rows {sorted(missing)} missing")
        rules = k.rules.scenarios[scenario]
        _require(set(rules.by_row) <= rows, f"scenarios[{scenario}].by_row: unknown row")
        for reason in rules.override_reasons:
            _require(reason in k.rules.override_reasons, f"override reason {reason} undefined")
        for study_type in studies:
            plan = k.card_plan(scenario, study_type)
            for suggestion in plan.suggestions:
                for name in suggestion.orderables:
                    _require(name in orderables, f"scenarios[{scenario}]: orderable {name}")
                _require(
                    not (rules.never_discourage and suggestion.kind == "cancel"),
                    f"scenarios[{scenario}] never discourages imaging: no cancel suggestion",
                )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(f"invalid knowledge: {message}")


def load_knowledge(folder: Path) -> Knowledge:
    """Load and validate `valuesets.yaml`, `imaging.yaml` and `rules.yaml` from one folder."""

    def read(name: str) -> object:
        with (folder / name).open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)

    return Knowledge(
        ValueSetsFile.model_validate(read("valuesets.yaml")),
        ImagingFile.model_validate(read("imaging.yaml")),
        RulesFile.model_validate(read("rules.yaml")),
    )
