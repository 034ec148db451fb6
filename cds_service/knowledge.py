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

from cds_service.icd10cm import icd10cm_release
from cds_service.textmatch import Language


class Scenario(StrEnum):
    PDPH_ACUTE = "pdph-acute"
    PDPH_ACUTE_RED_FLAGS = "pdph-acute-red-flags"
    PDPH_PERSISTENT = "pdph-persistent"
    SIH = "sih"
    POST_BLOOD_PATCH = "post-blood-patch"
    ALTERED_MENTAL_STATUS = "altered-mental-status"
    THUNDERCLAP = "thunderclap"


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


class TemperatureConcept(_Strict):
    codes: list[CodeEntry]
    text: list[str] = Field(default_factory=list)


class LanguageRules(_Strict):
    """Cue words for reading clinicians' text (cds_service/textmatch.py applies them)."""

    negation_before: list[str]
    negation_after: list[str]
    clause_terminators: list[str]
    filler_words: list[str]


class ValueSetsFile(_Strict):
    systems: dict[str, str]
    system_aliases: dict[str, str] = Field(default_factory=dict)
    language: LanguageRules
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
    display: str | None = None
    source: str


class ImagingText(_Strict):
    modality: dict[Literal["ct", "mri", "myelography", "dsm", "cta", "other"], list[str]]
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


class FindingGroups(_Strict):
    headache_evidence: list[str]
    intracranial_hypotension: list[str]
    puncture_evidence: list[str]
    durable: list[str]
    thunderclap: list[str]
    altered_mental_status: list[str]
    red_flags: list[str]


class PrecedenceRule(_Strict):
    """One line of the scenario precedence: when every condition holds, `then` decides."""

    when: list[str]
    then: Scenario | Literal["silent"]


class RulesFile(_Strict):
    thresholds: Thresholds
    source: SourceInfo
    rating_sources: dict[Literal["S", "T", "H", "J"], str]
    finding_groups: FindingGroups
    precedence: list[PrecedenceRule] = Field(min_length=1)
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


class Systems:
    """Code systems and their aliases: a coding under an OID URI (urn:oid:2.16.840.1.113883.6.12) is
    the same system as under its canonical URI (SPEC §3), wherever a code is read."""

    ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"

    def __init__(self, names: Mapping[str, str], aliases: Mapping[str, str]) -> None:
        self.names = dict(names)
        self._canonical = {uri: uri for uri in names.values()}
        self._canonical.update({alias: names[name] for alias, name in aliases.items()})

    def uri(self, name: str) -> str:
        """The canonical URI of a system named in the knowledge files (`cpt`, `loinc`...)."""
        return self.names[name]

    def canonical(self, system: str) -> str:
        return self._canonical.get(system.strip(), system)

    def normalise(self, canonical: str, code: str) -> str:
        """ICD-10-CM codes are compared without their dot and in upper case (EHRs send both)."""
        code = code.strip()
        return code.replace(".", "").upper() if canonical == self.ICD10CM else code

    def key(self, system: str, code: str) -> tuple[str, str]:
        canonical = self.canonical(system)
        return canonical, self.normalise(canonical, code)


class Matcher:
    """Recognises a concept from codings (exact system+code; an ICD-10-CM code and everything under
    it) or from free text, where a negated mention does not count (cds_service/textmatch.py)."""

    def __init__(
        self, codes: list[CodeEntry], text: list[str], systems: Systems, language: Language
    ) -> None:
        self.systems = systems
        self.language = language
        self.exact: set[tuple[str, str]] = set()
        self.prefixes: list[tuple[str, str]] = []
        for entry in codes:
            key = systems.key(systems.uri(entry.system), entry.code)
            if key[0] == Systems.ICD10CM:
                self.prefixes.append(key)
            else:
                self.exact.add(key)
        self.patterns = [re.compile(p, re.IGNORECASE) for p in text]

    def matches_code(self, system: str, code: str) -> bool:
        key = self.systems.key(system, code)
        if key in self.exact:
            return True
        return any(key[0] == s and key[1].startswith(p) for s, p in self.prefixes)

    def matches_text(self, text: str) -> bool:
        return any(
            not self.language.is_negated(text, *match.span())
            for pattern in self.patterns
            for match in pattern.finditer(text)
        )

    def spans(self, text: str) -> list[tuple[int, int, bool]]:
        """Every mention in `text`: start, end and whether it is affirmed."""
        return [
            (*match.span(), not self.language.is_negated(text, *match.span()))
            for pattern in self.patterns
            for match in pattern.finditer(text)
        ]


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

    def __init__(self, matchers: Mapping[str, Matcher], systems: Systems) -> None:
        self._matchers = dict(matchers)
        self._systems = systems
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
        canonical, normalised = self._systems.key(system, code)
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

    def spans_for_text(self, text: str) -> dict[str, list[tuple[int, int, bool]]]:
        """Every concept's mentions in `text` (affirmed or not), for reading an order's reason."""
        if self._screen is not None and self._screen.search(text) is None:
            return {}
        found = {key: m.spans(text) for key, m in self._matchers.items()}
        return {key: spans for key, spans in found.items() if spans}


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


class Knowledge:
    """Validated, compiled clinical knowledge of one hook service family (a folder under hooks/)."""

    def __init__(self, valuesets: ValueSetsFile, imaging: ImagingFile, rules: RulesFile) -> None:
        self.valuesets = valuesets
        self.imaging = imaging
        self.rules = rules
        _validate_systems(valuesets, imaging)
        systems = self.systems = Systems(valuesets.systems, valuesets.system_aliases)
        lang = valuesets.language
        self.language = Language.compile(
            lang.negation_before, lang.negation_after, lang.clause_terminators, lang.filler_words
        )

        def index(concepts: Mapping[str, Concept | TemperatureConcept]) -> ConceptIndex:
            return ConceptIndex(
                {k: Matcher(c.codes, c.text, systems, self.language) for k, c in concepts.items()},
                systems,
            )

        self.procedures = index(valuesets.procedures)
        self.findings = index(valuesets.findings)
        self.temperature = index({"body-temperature": valuesets.body_temperature})
        self.body_temperature = self.temperature["body-temperature"]
        self.study_by_code = {
            systems.key(systems.uri(c.system), c.code): c.study for c in imaging.codes
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

    def coding_system(self, name: str) -> str:
        return self.systems.uri(name)


def _validate_systems(valuesets: ValueSetsFile, imaging: ImagingFile) -> None:
    """Every code names a declared system (a `cpy` typo would silently disable it), and every
    ICD-10-CM code or subtree exists in the shipped CMS release."""
    names = valuesets.systems
    for alias, name in valuesets.system_aliases.items():
        _require(name in names, f"valuesets.yaml: system_aliases.{alias}: unknown system {name!r}")
    release = icd10cm_release()
    families: dict[str, Mapping[str, Concept | TemperatureConcept]] = {
        "procedures": valuesets.procedures,
        "findings": valuesets.findings,
        "body-temperature": {"codes": valuesets.body_temperature},
    }
    entries: list[tuple[str, str, CodeEntry]] = [
        ("valuesets.yaml", f"{family}.{key}.codes[{i}]", entry)
        for family, concepts in families.items()
        for key, concept in concepts.items()
        for i, entry in enumerate(concept.codes)
    ]
    entries += [
        ("imaging.yaml", f"orderables.{key}.code.coding[{i}]", entry)
        for key, orderable in imaging.orderables.items()
        for i, entry in enumerate(orderable.code.coding)
    ]
    entries += [
        ("imaging.yaml", f"codes[{i}]", CodeEntry(system=c.system, code=c.code, source=c.source))
        for i, c in enumerate(imaging.codes)
    ]
    for file, where, entry in entries:
        _require(
            entry.system in names,
            f"{file}: {where}: unknown system {entry.system!r} (declared: {', '.join(names)})",
        )
        if names[entry.system] == Systems.ICD10CM:
            _require(
                entry.code in release,
                f"{file}: {where}: ICD-10-CM {entry.code} is not in the {release.release} release",
            )


def _validate_groups(k: Knowledge) -> None:
    findings = set(k.valuesets.findings)
    grouped: set[str] = set()
    for group, names in k.rules.finding_groups.model_dump().items():
        for name in names:
            _require(
                name in findings, f"rules.yaml: finding_groups.{group}: unknown finding {name!r}"
            )
        grouped.update(names)
    for name in sorted(findings - grouped):
        _require(False, f"valuesets.yaml: findings.{name}: in no finding group of rules.yaml")


def _validate_references(k: Knowledge) -> None:
    """Cross-file checks: every name a rule uses exists, and the matrix has no hole."""
    _validate_groups(k)
    from cds_service.decide import check_precedence  # decide imports this module

    check_precedence(k)
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
