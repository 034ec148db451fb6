"""The text prefilter (cds_service/knowledge/prefilter.py) never leaves out a pattern that can match:
missing a red flag written in words is the dangerous error (SPEC §2).

- Folding: every character the regular expression engine matches with a pattern's literal
  character, ignoring case, folds to what that literal folds to; checked against the engine itself
  over every code point, for every literal character of the knowledge's patterns.
- Words: every match of every pattern (strings hypothesis generates from the pattern) contains one
  of the words `required` reads from it.
- Answers: on every string of the repository's tests, tools/context_corpus.py, fixtures and
  knowledge files, and on variations of them (case, the engine's Unicode equivalents, punctuation,
  negation and context words), each index gives the keys and spans of asking every matcher with
  every pattern: the same answers as before the prefilter, affirmed and negated mentions alike."""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.config import HOOKS_DIR
from cds_service.knowledge import ConceptIndex, Knowledge
from cds_service.knowledge.prefilter import Prefilter, fold, required
from cds_service.knowledge.registry import load_services
from cds_service.pipeline.classify import _parts_found

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("findings", "procedures", "temperature", "gcs", "blood_pressure")


@functools.cache
def _knowledge() -> Knowledge:
    return next(iter(load_services(HOOKS_DIR).values())).knowledge


def _indexes() -> list[ConceptIndex]:
    return [getattr(_knowledge(), family) for family in FAMILIES]


def _patterns() -> list[re.Pattern[str]]:
    """Every pattern a prefilter screens: the concept indexes' and imaging.yaml's text patterns."""
    indexed = [p for index in _indexes() for matcher in index.values() for p in matcher.patterns]
    return indexed + [p for _, p in _knowledge().imaging_patterns]


# -- folding -----------------------------------------------------------------------------------


def _literal_characters(items: Any) -> Iterator[str]:
    for op, av in items:
        if op is sre.LITERAL:
            yield chr(av)
        elif op is sre.SUBPATTERN:
            yield from _literal_characters(av[3])
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            yield from _literal_characters(av[2])
        elif op is sre.BRANCH:
            for branch in av[1]:
                yield from _literal_characters(branch)


EVERY_CHARACTER = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)


def test_folding_is_what_the_engine_compares() -> None:
    alphabet = sorted(
        {c for p in _patterns() for c in _literal_characters(_parser.parse(p.pattern, p.flags))}
    )
    assert len(alphabet) > 30
    for literal in alphabet:
        for flags in (re.IGNORECASE, 0):
            matched = re.findall(re.escape(literal), EVERY_CHARACTER, flags)
            assert literal in matched
            assert {fold(c) for c in matched} == {fold(literal)}, (literal, flags)


@pytest.mark.slow
def test_folding_keeps_length_and_is_stable() -> None:
    folded = fold(EVERY_CHARACTER)
    assert len(folded) == len(EVERY_CHARACTER)
    assert fold(folded) == folded
    # The engine's own equivalences beyond lower case, and its lowering of odd capitals.
    assert fold("ſ") == fold("S") == "s"
    assert fold("\u212a") == fold("K") == "k"  # KELVIN SIGN
    assert fold("ı") == fold("İ") == fold("I") == "i"
    assert fold("µ") == fold("Μ") == fold("μ")
    assert fold("\U00020001x") == "\U00020001x"


# -- words ------------------------------------------------------------------------------------


def test_words_read_from_a_pattern() -> None:
    cases = {
        r"head ?aches?": {"head"},
        r"\bkernig": {"kernig"},
        r"sentinel (headache|bleed)": {"sentinel "},
        r"(raised|increased) ICP": {"raised", "increased"},
        r"(?-i:HA)\b": {"ha"},
        r"monopar|monopleg": {"monop"},  # the parser factors the alternatives' common start
        r"(x|)yz": {"yz"},
        r"(x|)": None,
        r"a?b*[cd]+": None,
        r"(?<!no )fever": {"fever"},
        r"\d{2,3} ?/ ?\d{2,3}": {"/"},
        r"(?:abc){0,3}": None,
        r"(?:abc){1,3}": {"abc"},
        r"\bſtiff": {"stiff"},
    }
    for source, words in cases.items():
        found = required(re.compile(source, re.IGNORECASE))
        assert found == (None if words is None else frozenset(words)), source


def _holds_one_of_its_words(data: st.DataObject) -> None:
    compiled = data.draw(st.sampled_from(_patterns()))
    text = data.draw(st.from_regex(compiled))
    assert compiled.search(text)
    words = required(compiled)
    assert words is None or any(word in fold(text) for word in words), (compiled.pattern, text)
    assert Prefilter([compiled]).candidates(text) == {0}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_match_holds_one_of_its_words(data: st.DataObject) -> None:
    _holds_one_of_its_words(data)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_match_of_many_holds_one_of_its_words(data: st.DataObject) -> None:
    _holds_one_of_its_words(data)


# -- answers ----------------------------------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@functools.cache
def corpus() -> tuple[str, ...]:
    """Every string literal of the tests and tools/context_corpus.py, every string of the fixtures
    and the knowledge files: phrase lists, record texts, order reasons, lexicon phrases."""
    found: list[str] = []
    for path in [*sorted((ROOT / "tests").glob("*.py")), ROOT / "tools" / "context_corpus.py"]:
        tree = ast.parse(path.read_text())
        found += [
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        ]
    for path in sorted((ROOT / "fixtures").rglob("*.json")):
        found += list(_strings(json.loads(path.read_text())))
    for path in sorted(HOOKS_DIR.rglob("*.yaml")):
        found += list(_strings(yaml.safe_load(path.read_text())))
    texts = dict.fromkeys(t for t in found if re.search("[A-Za-z]", t) and len(t) < 2000)
    return tuple(texts)


@functools.cache
def _equivalents() -> dict[int, str]:
    """Each ASCII letter's other characters the engine matches with it ignoring case (ſ for s, the
    Kelvin sign for k, dotless and dotted i...), the first of them."""
    others: dict[int, str] = {}
    for c in map(chr, range(0x80, 0x20000)):
        target = fold(c)
        if target.isascii() and target.isalpha():
            others.setdefault(ord(target), c)
            others.setdefault(ord(target.upper()), c)
    return others


def variations(text: str) -> list[str]:
    return [
        text,
        text.upper(),
        text.swapcase(),
        text.translate(_equivalents()),
        re.sub(r"\s+", "-", text),
        re.sub(r"[-/]", " ", text),
        f"no {text}, r/o {text.lower()}?",
    ]


def _same_answers(index: ConceptIndex, text: str) -> None:
    """The index's answers are those of every matcher with every pattern (Matcher.matches_text is
    any affirmed span)."""
    spans = {key: m.spans(text) for key, m in index.items()}
    every = {key: found for key, found in spans.items() if found}
    affirmed = {key for key, found in every.items() if any(a for _, _, a in found)}
    assert dict(index.spans_for_text(text)) == every, text
    assert index.keys_for_text(text) == affirmed, text


def _same_answers_on(texts: list[str], index: ConceptIndex) -> int:
    hits = 0
    for text in texts:
        for variant in (text, text.translate(_equivalents())):
            _same_answers(index, variant)
        hits += bool(index.spans_for_text(text))
    return hits


@pytest.mark.parametrize("family", FAMILIES)
def test_screened_answers_are_every_matchers_on_a_sample_of_the_corpus(family: str) -> None:
    """The fast tier's sample; the slow tier reads the whole corpus and its variations."""
    index: ConceptIndex = getattr(_knowledge(), family)
    hits = _same_answers_on(corpus()[::20], index)
    if family in ("findings", "procedures"):
        assert hits > 5


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_screened_answers_are_every_matchers_on_the_corpus(family: str) -> None:
    index: ConceptIndex = getattr(_knowledge(), family)
    texts = corpus()
    assert len(texts) > 3000
    hits = _same_answers_on(texts, index)
    assert hits > (100 if family in ("findings", "procedures") else 5)


def _parts_of_every_pattern(text: str) -> frozenset[str]:
    """classify._parts_found's definition: every imaging text pattern tried."""
    k = _knowledge()
    return frozenset(
        f"{part}.{key}"
        for part, table in k.imaging_text.items()
        for key, patterns in table.items()
        if any(p.search(text) for p in patterns)
    )


@pytest.mark.slow
def test_imaging_words_are_read_as_by_every_pattern() -> None:
    k = _knowledge()
    hits = 0
    for text in corpus():
        for variant in variations(text):
            assert _parts_found(variant, k) == _parts_of_every_pattern(variant), variant
        hits += bool(_parts_found(text, k))
    assert hits > 100


@pytest.mark.slow
@pytest.mark.parametrize("family", ["findings", "procedures"])
def test_screened_answers_are_every_matchers_on_every_variation(family: str) -> None:
    index: ConceptIndex = getattr(_knowledge(), family)
    for text in corpus():
        for variant in variations(text):
            _same_answers(index, variant)
    joined = [f"{a}, {b}" for a, b in zip(corpus()[::7], corpus()[3::7], strict=False)]
    for text in joined:
        _same_answers(index, text)


def test_most_texts_leave_most_patterns_untried() -> None:
    index: ConceptIndex = _knowledge().findings
    patterns = sum(len(m.patterns) for m in index.values())
    tried = [len(index._prefilter.candidates(text)) for text in corpus()]
    assert sum(tried) / len(tried) < patterns / 20
