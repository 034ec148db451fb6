"""Checks of the knowledge's texts and patterns when it loads: a text with placeholders is a small
program, a regular expression too. Every placeholder of every text field is checked against the values
the renderer or the explanation page will give it, and every regular expression is compiled, each
mistake named in one line with its file and key (a typo would otherwise be a 500 at the first card)."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from cds_service.errors import KnowledgeError
from cds_service.knowledge.language import pattern
from cds_service.knowledge.model import (
    CardsFile,
    ImagingFile,
    LexiconFile,
    RulesFile,
    Thresholds,
    ValueSetsFile,
)

# The thresholds every text may name ({acute_window_hours}, {lookback_days}...).
THRESHOLDS = frozenset(Thresholds.model_fields)
# What a card's summary, why and what lines are given, besides the thresholds (render.placeholders).
CARD = THRESHOLDS | {
    "ordered",
    "prior_study",
    "puncture",
    "hours_phrase",
    "evidence",
    "red_flags",
    "rating_phrase",
    "flags",
    "first_flag",
}
# Labels and what each is given (render.py, explain.py).
LABELS: Mapping[str, frozenset[str]] = {
    "hours": frozenset({"hours"}),
    "hours_at_least": frozenset({"hours"}),
    "puncture": frozenset({"procedure", "hours_phrase"}),
    "puncture_from_diagnosis": frozenset({"procedure", "hours_phrase"}),
    "prior_study": frozenset({"study", "date"}),
    "prior_study_concluded": frozenset({"study", "date", "conclusion"}),
    "uninterpreted": frozenset({"words"}),
    "doubt_summary": CARD,
}
SUGGESTIONS: Mapping[str, frozenset[str]] = {
    "cancel": frozenset({"ordered"}),
    "replace": frozenset({"ordered", "recommended"}),
    "add": frozenset({"recommended"}),
    "cancel_proposed_elsewhere": frozenset({"ordered", "recommended"}),
    "cancel_already_drafted": frozenset({"ordered", "recommended"}),
}
EXPLAIN: Mapping[str, frozenset[str]] = {"footer": frozenset({"label", "fingerprint"})}


def placeholders(text: str) -> set[str]:
    """The names a format string asks for; a malformed one ("{ordered") raises ValueError."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def threshold_values(t: Thresholds) -> dict[str, str]:
    """Every threshold as a text may show it ("72", "38", "6")."""
    return {name: f"{value:g}" for name, value in t.model_dump().items()}


def _check(where: str, text: str, allowed: frozenset[str]) -> None:
    try:
        unknown = sorted(placeholders(text) - allowed)
    except ValueError as exc:
        raise KnowledgeError(f"{where}: not a valid text with placeholders ({exc})") from None
    if unknown:
        raise KnowledgeError(
            f"{where}: unknown placeholder {', '.join('{' + u + '}' for u in unknown)}"
        )


def _scenario_texts(rules: RulesFile) -> Iterator[tuple[str, str, frozenset[str]]]:
    """(key, text, allowed): the explanation page's fields know only the thresholds."""
    for scenario, r in rules.scenarios.items():
        at = f"rules.yaml: scenarios.{scenario}"
        for field in ("title", "advice", "next_steps", "watch_for"):
            if isinstance(value := getattr(r, field), str):
                yield f"{at}.{field}", value, THRESHOLDS
        for field in ("summary", "why", "what"):
            yield f"{at}.{field}", getattr(r, field), CARD
        overrides = [(f"by_row.{row}", o) for row, o in r.by_row.items()]
        if r.leak_localizing:
            overrides.append(("leak_localizing", r.leak_localizing))
        for name, variant in r.variants.items():
            for field in ("summary", "why", "what"):
                if isinstance(value := getattr(variant, field), str):
                    yield f"{at}.variants.{name}.{field}", value, CARD
            overrides += [(f"variants.{name}.by_row.{row}", o) for row, o in variant.by_row.items()]
        for key, override in overrides:
            if override.summary:
                yield f"{at}.{key}.summary", override.summary, CARD


def check_texts(rules: RulesFile, cards: CardsFile) -> None:
    for where, text, allowed in _scenario_texts(rules):
        _check(where, text, allowed)
    labels = cards.labels.model_dump()
    for name, text in labels.items():
        _check(f"cards.yaml: labels.{name}", text, LABELS.get(name, frozenset()))
    for name, text in cards.suggestions.model_dump().items():
        _check(f"cards.yaml: suggestions.{name}", text, SUGGESTIONS[name])
    for name, text in cards.explain.model_dump().items():
        _check(f"cards.yaml: explain.{name}", text, EXPLAIN.get(name, frozenset()))


def _compile(where: str, patterns: Iterable[str]) -> None:
    for i, source in enumerate(patterns):
        try:
            pattern(source)
        except re.error as exc:
            raise KnowledgeError(f"{where}[{i}]: not a valid regular expression ({exc})") from None


def check_patterns(
    valuesets: ValueSetsFile, imaging: ImagingFile, lexicon: LexiconFile | None
) -> None:
    """Every regular expression of the knowledge compiles."""
    lang = valuesets.language
    groups: dict[str, Any] = {
        "valuesets.yaml: language.negation_before": lang.negation_before,
        "valuesets.yaml: language.negation_after": lang.negation_after,
        "valuesets.yaml: language.clause_terminators": lang.clause_terminators,
        "valuesets.yaml: language.accounted_patterns": lang.accounted_patterns,
        "valuesets.yaml: read-observations.always": valuesets.read_observations.always,
        "valuesets.yaml: read-observations.obstetric": valuesets.read_observations.obstetric,
        "valuesets.yaml: body-temperature.text": valuesets.body_temperature.text,
        "valuesets.yaml: glasgow-coma-score.text": valuesets.glasgow_coma_score.text,
        "valuesets.yaml: blood-pressure.text": valuesets.blood_pressure.text,
    }
    for family in ("procedures", "findings"):
        for key, concept in getattr(valuesets, family).items():
            groups[f"valuesets.yaml: {family}.{key}.text"] = concept.text
    for part, table in imaging.text.model_dump().items():
        for key, patterns in table.items():
            groups[f"imaging.yaml: text.{part}.{key}"] = patterns
    if lexicon is not None:
        for key, entry in lexicon.concepts.items():
            groups[f"lexicon.yaml: concepts.{key}.phrases"] = entry.phrases
    for where, patterns in groups.items():
        _compile(where, patterns)
