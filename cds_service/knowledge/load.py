"""Clinical knowledge loaded from YAML under hooks/ and validated at start-up, so a broken rule file
stops the service before it answers anyone: every name one file uses is checked against the file
that defines it, every code against its system (ICD-10-CM against the CMS release)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from itertools import product
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from cds_service.errors import KnowledgeError
from cds_service.knowledge.card_parts import card_parts
from cds_service.knowledge.icd10cm import icd10cm_release
from cds_service.knowledge.language import Language, pattern
from cds_service.knowledge.matching import ConceptIndex, Matcher, Systems
from cds_service.knowledge.model import (
    CardPlan,
    CardPlanOverride,
    CardsFile,
    CodeEntry,
    Concept,
    ImagingFile,
    LexiconFile,
    MeasurementConcept,
    Rating,
    RatingCell,
    RulesFile,
    ScenarioVariant,
    ValueSetsFile,
)
from cds_service.knowledge.predicates import (
    FINDING_GROUPS,
    IN_GROUP,
    PREDICATES,
    PROCEDURE_ROLES,
    unknown_condition,
)
from cds_service.knowledge.prefilter import Prefilter
from cds_service.knowledge.texts import check_patterns, check_texts


class Knowledge:
    """Validated, compiled clinical knowledge of one hook service family (a folder under hooks/)."""

    def __init__(
        self,
        valuesets: ValueSetsFile,
        imaging: ImagingFile,
        rules: RulesFile,
        cards: CardsFile,
        content_hash: str = "unhashed",
        lexicon: LexiconFile | None = None,
    ) -> None:
        self.cards = cards
        missing = [g for g in FINDING_GROUPS if g not in rules.finding_groups]
        _require(not missing, f"rules.yaml: finding_groups: {', '.join(missing)} missing")
        # Finding groups (rules.yaml) as sets, computed once: the predicates read them per order.
        self.finding_groups = {name: frozenset(keys) for name, keys in rules.finding_groups.items()}
        # Findings that only ever make imaging more urgent (a red flag, a thunderclap onset, altered
        # mental status): safe to read wherever they are written, an orderable's name included.
        groups = self.finding_groups
        self.urgent_findings = (
            groups["red_flags"] | groups["thunderclap"] | groups["altered_mental_status"]
        )
        self.version = rules.version
        self.content_hash = content_hash
        # What cards, audit rows and /readyz name: any rating traces back to the rules behind it.
        self.fingerprint = f"{rules.version}+{content_hash[:12]}"
        self.valuesets = valuesets
        self.imaging = imaging
        self.rules = rules
        _validate_systems(valuesets, imaging)
        systems = self.systems = Systems(valuesets.systems, valuesets.system_aliases)
        check_patterns(valuesets, imaging, lexicon)  # a bad regular expression named, not raised
        lang = valuesets.language
        self.language = Language.compile(
            lang.negation_before,
            lang.negation_after,
            lang.clause_terminators,
            lang.filler_words,
            lang.accounted_patterns,
        )
        read = valuesets.read_observations
        # The observed items whose words the fail-safe rule reads: always, and in pregnancy.
        self.read_items = pattern("|".join(f"(?:{p})" for p in read.always))
        self.read_items_obstetric = (
            pattern("|".join(f"(?:{p})" for p in read.obstetric)) if read.obstetric else None
        )
        # Code systems whose codes are understood by their code (SPEC §2: a Condition coded in
        # ICD-10-CM or SNOMED CT is understood; only the others are read as text).
        standard = {valuesets.systems["icd10cm"], valuesets.systems["snomed"]}
        self.standard_systems = frozenset(
            standard
            | {
                alias
                for alias, name in valuesets.system_aliases.items()
                if valuesets.systems[name] in standard
            }
        )

        def index(concepts: Mapping[str, Concept | MeasurementConcept]) -> ConceptIndex:
            return ConceptIndex(
                {k: Matcher(c.codes, c.text, systems, self.language) for k, c in concepts.items()},
                systems,
            )

        self.lexicon = lexicon
        self.icd10cm_release = icd10cm_release().release
        self.procedures = index(valuesets.procedures)
        self.procedure_roles = {key: c.role for key, c in valuesets.procedures.items()}
        self.findings = index(_with_lexicon(valuesets.findings, lexicon))
        self.temperature = index({"body-temperature": valuesets.body_temperature})
        self.gcs = index({"glasgow-coma-score": valuesets.glasgow_coma_score})
        bp = valuesets.blood_pressure
        self.blood_pressure = index(
            {
                "panel": MeasurementConcept(codes=bp.codes, text=bp.text),
                "systolic": MeasurementConcept(codes=bp.systolic),
                "diastolic": MeasurementConcept(codes=bp.diastolic),
            }
        )
        self.study_roles = {key: frozenset(st.roles) for key, st in imaging.studies.items()}
        self.study_by_code = {
            systems.key(systems.uri(c.system), c.code): c.study for c in imaging.codes
        }
        self.imaging_text = {
            part: {key: [pattern(p) for p in pats] for key, pats in table.items()}
            for part, table in imaging.text.model_dump().items()
        }
        # The same patterns in one list, named "part.key", and which of them may match a text
        # (knowledge/prefilter.py): an order's or a study's words are read without trying them all.
        self.imaging_patterns = [
            (f"{part}.{key}", p)
            for part, table in self.imaging_text.items()
            for key, pats in table.items()
            for p in pats
        ]
        self.imaging_prefilter = Prefilter([p for _, p in self.imaging_patterns])
        self._card_plans: dict[tuple[str, str, str | None], CardPlan] = {}
        # Words left uninterpreted per concept content (knowledge/terminology.py), memoised.
        self.unread_cache: dict[Any, tuple[str, ...]] = {}
        # Study type per concept key (pipeline/classify.py), memoised.
        self.study_cache: dict[tuple[object, ...], str | None] = {}
        # A Condition code's findings and whether it is standard, per concept key (terminology.py).
        self.problem_cache: dict[tuple[object, ...], tuple[frozenset[str], bool]] = {}
        _validate_references(self)
        # What cards carry that no patient changes (override reasons, created orders' codes).
        self.card_parts = card_parts(rules, imaging, valuesets.systems)

    def finding_display(self, key: str) -> str:
        return self.valuesets.findings[key].display

    def rating(self, scenario: str, study_type: str, variant: str | None = None) -> RatingCell:
        row = self.imaging.studies[study_type].rating_row
        chosen = self.rules.scenarios[scenario].variants.get(variant) if variant else None
        if chosen is not None:
            cell = chosen.ratings.get(row) or chosen.rating
            if cell is not None:
                return cell
        return self.rules.ratings[scenario][row]

    def repeat_group(self, study_type: str) -> str:
        return self.imaging.studies[study_type].repeat_group or study_type

    def card_plan(self, scenario: str, study_type: str, variant: str | None = None) -> CardPlan:
        """The plan for one study in one scenario, merged once and then reused (knowledge is frozen)."""
        key = (scenario, study_type, variant)
        plan = self._card_plans.get(key)
        if plan is None:
            plan = self._card_plans[key] = self._merge_plan(scenario, study_type, variant)
        return plan

    def _merge_plan(self, scenario: str, study_type: str, variant: str | None) -> CardPlan:
        rules = self.rules.scenarios[scenario]
        study = self.imaging.studies[study_type]
        chosen = rules.variants.get(variant) if variant else None
        override = chosen.by_row.get(study.rating_row) if chosen else None
        override = override or rules.by_row.get(study.rating_row)
        if override is None and study.leak_localizing:
            override = rules.leak_localizing
        override = override or CardPlanOverride()
        base = chosen or ScenarioVariant()
        suggestions = base.suggestions if base.suggestions is not None else rules.suggestions
        return CardPlan(
            card=override.card or "show",
            indicator=override.indicator or base.indicator or rules.indicator,
            summary=override.summary or base.summary or rules.summary,
            why=base.why or rules.why,
            what=base.what or rules.what,
            suggestions=suggestions if override.suggestions is None else override.suggestions,
        )

    def coding_system(self, name: str) -> str:
        return self.systems.uri(name)


def _with_lexicon(findings: dict[str, Concept], lexicon: LexiconFile | None) -> dict[str, Concept]:
    """The findings with the phrases lexicon.yaml read from the terminology, each concept's as one
    more expression (one alternation, not hundreds of patterns to try)."""
    if lexicon is None:
        return findings
    for key in lexicon.concepts:
        _require(key in findings, f"lexicon.yaml: concepts.{key}: unknown finding")
    return {
        key: concept.model_copy(
            update={"text": [*concept.text, "|".join(f"(?:{p})" for p in found.phrases)]}
        )
        if (found := lexicon.concepts.get(key)) is not None and found.phrases
        else concept
        for key, concept in findings.items()
    }


def _validate_systems(valuesets: ValueSetsFile, imaging: ImagingFile) -> None:
    """Every code names a declared system (a `cpy` typo would silently disable it), and every
    ICD-10-CM code or subtree exists in the shipped CMS release."""
    names = valuesets.systems
    for alias, name in valuesets.system_aliases.items():
        _require(name in names, f"valuesets.yaml: system_aliases.{alias}: unknown system {name!r}")
    release = icd10cm_release()
    families: dict[str, Mapping[str, Concept | MeasurementConcept]] = {
        "procedures": valuesets.procedures,
        "findings": valuesets.findings,
        "body-temperature": {"codes": valuesets.body_temperature},
        "glasgow-coma-score": {"codes": valuesets.glasgow_coma_score},
        "blood-pressure": {
            "panel": MeasurementConcept(codes=valuesets.blood_pressure.codes),
            "systolic": MeasurementConcept(codes=valuesets.blood_pressure.systolic),
            "diastolic": MeasurementConcept(codes=valuesets.blood_pressure.diastolic),
        },
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
    for group, names in k.rules.finding_groups.items():
        for name in names:
            _require(
                name in findings, f"rules.yaml: finding_groups.{group}: unknown finding {name!r}"
            )
        grouped.update(names)
    for name in sorted(findings - grouped):
        _require(False, f"valuesets.yaml: findings.{name}: in no finding group of rules.yaml")
    vs = k.valuesets
    made: list[tuple[str, str | None]] = [
        (f"procedures.{key}.finding", c.finding) for key, c in vs.procedures.items()
    ]
    made += [
        ("body-temperature.finding", vs.body_temperature.finding),
        ("glasgow-coma-score.finding", vs.glasgow_coma_score.finding),
        ("blood-pressure.findings.emergency", vs.blood_pressure.findings.emergency),
        ("blood-pressure.findings.severe_range", vs.blood_pressure.findings.severe_range),
    ]
    for where, finding in made:
        _require(
            finding is None or finding in findings,
            f"valuesets.yaml: {where}: unknown finding {finding!r}",
        )
    for key, concept in vs.procedures.items():
        _require(
            concept.role != "delivery" or concept.finding is not None,
            f"valuesets.yaml: procedures.{key}: a delivery names the finding it makes (postpartum)",
        )
        _require(
            concept.role in PROCEDURE_ROLES,
            f"valuesets.yaml: procedures.{key}.role: unknown role {concept.role!r}"
            f" (known: {', '.join(PROCEDURE_ROLES)})",
        )


def _validate_texts(k: Knowledge) -> None:
    """Every placeholder of every text is one it will be given (knowledge/texts.py)."""
    check_texts(k.rules, k.cards)
    missing = set(Rating) - set(k.cards.rating_phrases)
    _require(not missing, f"cards.yaml: rating_phrases: {sorted(missing)} missing")


def _validate_references(k: Knowledge) -> None:
    """Cross-file checks: every name a rule uses exists, and the matrix has no hole."""
    _validate_groups(k)
    _validate_texts(k)
    for number, rule in enumerate(k.rules.precedence):
        for condition in rule.when:
            name = unknown_condition(condition, k.finding_groups)
            _require(
                name is None,
                f"rules.yaml: precedence[{number}]: unknown condition {name!r}"
                f" (known: {', '.join(PREDICATES)}, or '{IN_GROUP}<finding group>')",
            )
    studies, orderables = k.imaging.studies, k.imaging.orderables
    rows = {s.rating_row for s in studies.values()}
    for study_code in k.imaging.codes:
        _require(study_code.study in studies, f"imaging code {study_code.code}: unknown study")
    part_names = {f"{part}.{key}" for part, table in k.imaging_text.items() for key in table}
    for key, classify in (("classify", k.imaging.classify), ("refine", k.imaging.refine)):
        for number, line in enumerate(classify):
            where = f"imaging.yaml: {key}[{number}]"
            unknown_parts = sorted(set(line.parts_named()) - part_names)
            _require(not unknown_parts, f"{where}: unknown parts {unknown_parts}")
            unknown_studies = sorted(set(line.studies() + line.from_) - set(studies))
            _require(not unknown_studies, f"{where}: unknown studies {unknown_studies}")
    for key, orderable in orderables.items():
        _require(orderable.study is None or orderable.study in studies, f"orderable {key}: study")
        _require(
            orderable.in_pregnancy is None or orderable.in_pregnancy in orderables,
            f"imaging.yaml: orderables.{key}.in_pregnancy: unknown orderable {orderable.in_pregnancy!r}",
        )
    for number, step in enumerate(k.rules.precedence):
        _require(
            step.then == "silent" or step.then in k.rules.scenarios,
            f"rules.yaml: precedence[{number}].then: unknown scenario {step.then!r}",
        )
    for scenario in k.rules.scenarios:
        _require(scenario in k.rules.ratings, f"rules.yaml: ratings: scenario {scenario} missing")
        missing = rows - set(k.rules.ratings[scenario])
        _require(not missing, f"ratings[{scenario}]: rows {sorted(missing)} missing")
        rules = k.rules.scenarios[scenario]
        _require(set(rules.by_row) <= rows, f"scenarios[{scenario}].by_row: unknown row")
        for reason in rules.override_reasons:
            _require(reason in k.rules.override_reasons, f"override reason {reason} undefined")
        for name, chosen in rules.variants.items():
            _require(
                unknown_condition(name, k.finding_groups) is None,
                f"rules.yaml: scenarios.{scenario}.variants: unknown condition {name!r}",
            )
            unknown = (set(chosen.ratings) | set(chosen.by_row)) - rows
            _require(not unknown, f"scenarios[{scenario}].variants.{name}: rows {unknown}")
        variants: list[str | None] = [None, *rules.variants]
        for study_type, variant in product(studies, variants):
            plan = k.card_plan(scenario, study_type, variant)
            for suggestion in plan.suggestions:
                for name in suggestion.orderables:
                    _require(name in orderables, f"scenarios[{scenario}]: orderable {name}")
                for name in suggestion.unless_drafted:
                    _require(name in studies, f"scenarios[{scenario}]: unless_drafted {name}")
                _require(
                    not (rules.never_discourage and suggestion.kind == "cancel"),
                    f"scenarios[{scenario}] never discourages imaging: no cancel suggestion",
                )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise KnowledgeError(message)


KNOWLEDGE_FILES = ("valuesets.yaml", "imaging.yaml", "rules.yaml", "cards.yaml", "lexicon.yaml")


# libyaml's loader where PyYAML was built with it (the wheels are): ten times faster to start.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Compiled knowledge per folder and content hash: apps built in one process (workers' reloads,
# tests, tools) share it; it is immutable once built.
_COMPILED: dict[tuple[str, str], Knowledge] = {}


def load_knowledge(folder: Path, lexicon: bool = True) -> Knowledge:
    """Load and validate the knowledge files of one folder. Every mistake is a KnowledgeError of one
    line naming the file, the key and the problem. `lexicon=False` leaves lexicon.yaml out (the
    builder of that file reads the concepts' own words)."""
    digest = hashlib.sha256()
    raws: dict[str, bytes] = {}
    names = KNOWLEDGE_FILES if lexicon else KNOWLEDGE_FILES[:-1]
    for name in names:
        path = folder / name
        try:
            raws[name] = path.read_bytes()
        except OSError as exc:
            raise KnowledgeError(f"{path}: cannot be read ({exc.strerror})") from None
        digest.update(name.encode() + b"\0" + raws[name] + b"\0")
    key = (str(folder.resolve()), digest.hexdigest())
    if key in _COMPILED:
        return _COMPILED[key]
    data: dict[str, object] = {}
    for name, raw in raws.items():
        try:
            data[name] = yaml.load(raw, Loader=_LOADER)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise KnowledgeError(f"{folder / name}:{where}: not valid YAML") from None
    models: list[BaseModel] = []
    schemas: tuple[type[BaseModel], ...] = (
        ValueSetsFile,
        ImagingFile,
        RulesFile,
        CardsFile,
        LexiconFile,
    )
    for name, model in zip(names, schemas, strict=False):
        try:
            models.append(model.model_validate(data[name]))
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            raise KnowledgeError(
                f"{path_of(folder, name)}: {where}: {first['msg']}{more}"
            ) from None
    valuesets, imaging, rules, cards, *rest = models
    assert isinstance(valuesets, ValueSetsFile) and isinstance(imaging, ImagingFile)
    assert isinstance(rules, RulesFile) and isinstance(cards, CardsFile)
    words = rest[0] if rest else None
    assert words is None or isinstance(words, LexiconFile)
    knowledge = _COMPILED[key] = Knowledge(
        valuesets, imaging, rules, cards, digest.hexdigest(), words
    )
    return knowledge


def path_of(folder: Path, name: str) -> str:
    return f"{folder.name}/{name}"
