"""Recognising concepts: code systems and their aliases, one concept's matcher (codes and words), and
the compiled index of a value-set family."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TypeVar

from cds_service.knowledge.language import Language, pattern
from cds_service.knowledge.model import CodeEntry
from cds_service.knowledge.prefilter import Prefilter


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


def in_range(code: str, first: str, last: str) -> bool:
    """An ICD-10-CM code (normalised) whose category lies in first..last ("O00".."O9A"): categories
    sort as the classification lists them (a letter, two characters)."""
    return first <= code[:3] <= last


Span = tuple[int, int, bool]  # start, end, affirmed


class Matcher:
    """Recognises a concept from codings (exact system+code; an ICD-10-CM code and everything under
    it) or from free text, where a negated mention does not count (cds_service/knowledge/language.py)."""

    def __init__(
        self, codes: list[CodeEntry], text: list[str], systems: Systems, language: Language
    ) -> None:
        self.systems = systems
        self.language = language
        self.exact: set[tuple[str, str]] = set()
        self.prefixes: list[tuple[str, str]] = []
        self.ranges: list[tuple[str, str, str]] = []  # system, first and last category
        for entry in codes:
            key = systems.key(systems.uri(entry.system), entry.code)
            if key[0] == Systems.ICD10CM and "-" in key[1]:
                first, last = key[1].split("-")
                self.ranges.append((key[0], first, last))
            elif key[0] == Systems.ICD10CM:
                self.prefixes.append(key)
            else:
                self.exact.add(key)
        self.patterns = [pattern(p) for p in text]

    def matches_code(self, system: str, code: str) -> bool:
        key = self.systems.key(system, code)
        if key in self.exact:
            return True
        if any(key[0] == s and in_range(key[1], a, b) for s, a, b in self.ranges):
            return True
        return any(key[0] == s and key[1].startswith(p) for s, p in self.prefixes)

    def matches_text(self, text: str, patterns: Sequence[re.Pattern[str]] | None = None) -> bool:
        """Whether `text` affirms the concept; `patterns`: only those of the concept's patterns
        that may match (the others cannot: the same answer)."""
        return any(affirmed for _, _, affirmed in self._mentions(text, patterns))

    def spans(
        self, text: str, patterns: Sequence[re.Pattern[str]] | None = None
    ) -> tuple[Span, ...]:
        """Every mention in `text`: start, end and whether it is affirmed (`patterns` as above)."""
        return tuple(self._mentions(text, patterns))

    def _mentions(
        self, text: str, patterns: Sequence[re.Pattern[str]] | None = None
    ) -> Iterator[Span]:
        for compiled in self.patterns if patterns is None else patterns:
            for match in compiled.finditer(text):
                start, end = match.span()
                yield start, end, not self.language.is_negated(text, start, end)


NO_KEYS: frozenset[str] = frozenset()
NO_SPANS: Mapping[str, tuple[Span, ...]] = MappingProxyType({})
CACHE_SIZE = 4096
K = TypeVar("K")
V = TypeVar("V")


class ConceptIndex(Mapping[str, Matcher]):
    """The matchers of one value-set family (procedures, findings...) compiled for lookup, so matching
    a coding costs one dict lookup whatever the number of concepts: (system, code) → the keys of the
    concepts listing it, plus the few prefix codes per system. A text is first screened by the words
    each pattern cannot match without (knowledge/prefilter.py): most words in a record (chronic
    problems, vital signs) contain none, and only the patterns whose words it contains are tried
    (one expression joining every pattern cost about 12 us a character, a tenth of a millisecond
    for a short problem-list text). Answers for codes and texts are memoised (bounded): records
    repeat the same codes and displays over and over. The answers are those of asking every
    Matcher in turn (tests/test_perf_matching.py, tests/test_prefilter.py)."""

    def __init__(self, matchers: Mapping[str, Matcher], systems: Systems) -> None:
        self._matchers = dict(matchers)
        self._systems = systems
        exact: dict[tuple[str, str], set[str]] = {}
        prefixes: dict[str, list[tuple[str, str]]] = {}
        ranges: dict[str, list[tuple[str, str, str]]] = {}
        for key, matcher in self._matchers.items():
            for pair in matcher.exact:
                exact.setdefault(pair, set()).add(key)
            for system, prefix in matcher.prefixes:
                prefixes.setdefault(system, []).append((prefix, key))
            for system, first, last in matcher.ranges:
                ranges.setdefault(system, []).append((first, last, key))
        self._exact = {pair: frozenset(keys) for pair, keys in exact.items()}
        self._prefixes = prefixes
        self._ranges = ranges
        # Which patterns may match a text, from words they cannot match without
        # (knowledge/prefilter.py): only those are tried, concept by concept in order.
        self._patterns = [(key, p) for key, m in self._matchers.items() for p in m.patterns]
        self._prefilter = Prefilter([p for _, p in self._patterns])
        self._text_cache: dict[str, frozenset[str]] = {}
        self._code_cache: dict[tuple[str, str], frozenset[str]] = {}
        self._spans_cache: dict[str, Mapping[str, tuple[Span, ...]]] = {}
        # Keys per whole CodeableConcept, by what recognition reads of it (terminology.concept_key).
        self.concept_cache: dict[tuple[object, ...], frozenset[str]] = {}

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
        for first, last, key in self._ranges.get(canonical, ()):
            if in_range(normalised, first, last) and key not in found:
                found = found | {key}
        remember(self._code_cache, (system, code), found)
        return found

    def keys_for_text(self, text: str) -> frozenset[str]:
        found = self._text_cache.get(text)
        if found is not None:
            return found
        may = self._may_match(text)
        found = frozenset(k for k, ps in may.items() if self._matchers[k].matches_text(text, ps))
        remember(self._text_cache, text, found or NO_KEYS)
        return found or NO_KEYS

    def spans_for_text(self, text: str) -> Mapping[str, tuple[Span, ...]]:
        """Every concept's mentions in `text` (affirmed or not), for reading an order's reason.
        Memoised like keys_for_text: order reasons are picked from short lists and recur."""
        found = self._spans_cache.get(text)
        if found is not None:
            return found
        every = ((k, self._matchers[k].spans(text, ps)) for k, ps in self._may_match(text).items())
        found = MappingProxyType({key: spans for key, spans in every if spans}) or NO_SPANS
        remember(self._spans_cache, text, found)
        return found

    def _may_match(self, text: str) -> dict[str, list[re.Pattern[str]]]:
        """The patterns that may match `text`, by concept (in the index's order, each concept's
        in its own order): a pattern left out cannot match, so a concept left out has no mention
        in the text, affirmed or not."""
        may: dict[str, list[re.Pattern[str]]] = {}
        for at in sorted(self._prefilter.candidates(text)):
            key, compiled = self._patterns[at]
            may.setdefault(key, []).append(compiled)
        return may


def remember(cache: dict[K, V], key: K, value: V) -> None:
    """Bounded memo: emptied when full, so a stream of distinct texts cannot grow it without end."""
    if len(cache) >= CACHE_SIZE:
        cache.clear()
    cache[key] = value
