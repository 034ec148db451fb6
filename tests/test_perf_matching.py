"""The compiled concept index (code lookup, text screen, memo) answers exactly as asking every
Matcher in turn did, on every concept of the fixtures, a large synthetic patient and tricky words."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import pytest

from bench.payloads import large_patient_request
from cds_service.knowledge import ConceptIndex, Knowledge, Matcher
from cds_service.knowledge.terminology import match, parts, recognised_by_any
from cds_tools.fixtures import fixture_paths, load_fixture
from tests.conftest import NOW


def codings(concept: Any) -> list[tuple[str, str]]:
    """The definition: (system, code) of every coding object whose system and code are strings."""
    found = concept.get("coding") if isinstance(concept, dict) else None
    return [
        (c["system"], c["code"])
        for c in (found if isinstance(found, list) else [])
        if isinstance(c, dict)
        and isinstance(c.get("system"), str)
        and isinstance(c.get("code"), str)
    ]


def words(concept: Any) -> str:
    """The definition: the text and every coding display that is a non-empty string, a line each."""
    if not isinstance(concept, dict):
        return ""
    found = concept.get("coding")
    displays = (
        [c.get("display") for c in found if isinstance(c, dict)] if isinstance(found, list) else []
    )
    return "\n".join(p for p in [concept.get("text"), *displays] if isinstance(p, str) and p)


def naive_match(concept: Any, matchers: Mapping[str, Matcher]) -> set[str]:
    """The definition: every matcher tried on every coding, and on the words."""
    found = {
        key
        for system, code in codings(concept)
        for key, matcher in matchers.items()
        if matcher.matches_code(system, code)
    }
    text = words(concept)
    if not text:
        return found
    return found | {key for key, matcher in matchers.items() if matcher.matches_text(text)}


def _concepts(value: Any) -> list[Any]:
    """Every dict under `value` that looks like a CodeableConcept."""
    found: list[Any] = []
    if isinstance(value, dict):
        if "coding" in value or "text" in value:
            found.append(value)
        for child in value.values():
            found += _concepts(child)
    elif isinstance(value, list):
        for child in value:
            found += _concepts(child)
    return found


TRICKY = [
    "spinal headache",
    "Post-dural puncture headache, no fever",
    "denies headache",
    "No nuchal rigidity; headache since LP",
    "worst headache of her life",
    "Temp",
    "temperature",
    "Body temperature",
    "SAH ruled out",
    "r/o meningitis",
    "Epidural blood patch",
    "Lumbar puncture, diagnostic",
    "confusion",
    "Essential hypertension",
    "",
]
SYSTEMS = [
    "http://hl7.org/fhir/sid/icd-10-cm",
    "urn:oid:2.16.840.1.113883.6.90",
    "urn:oid:2.16.840.1.113883.6.96",
    "http://hl7.org/fhir/sid/icd-10",
    "http://snomed.info/sct",
    "http://www.ama-assn.org/go/cpt",
]
CODES = ["G97.1", "g971", " G97.1 ", "O29.41", "G96.811", "G96.0", "I60.9", "R50.9", "25064002"]
CODES += ["62270", "62273", "8310-5", "I10", "S06.5X0A", "G00.1", "O15.1", "G40.909", "01967"]


def all_concepts() -> list[Any]:
    """A new list each call, of concepts read once per session (the fixtures, a large patient)."""
    return list(_all_concepts())


@cache
def _all_concepts() -> tuple[Any, ...]:
    concepts: list[Any] = []
    for path in fixture_paths():
        concepts += _concepts(load_fixture(path, NOW)["request"])
    concepts += _concepts(large_patient_request(NOW, 200, 50, 100)["prefetch"])
    concepts += [{"text": t} for t in TRICKY]
    concepts += [{"coding": [{"system": s, "code": c}]} for s in SYSTEMS for c in CODES]
    concepts += [{"coding": [{"system": SYSTEMS[0], "code": "I10"}], "text": "headache"}]
    concepts += [None, "text", {"coding": "x"}, {"coding": [{"code": 5}]}]
    return tuple(concepts)


def test_a_concept_is_read_in_one_pass_as_by_its_definition() -> None:
    concepts = all_concepts()
    for concept in concepts:
        assert parts(concept) == (tuple(codings(concept)), words(concept)), concept
    assert any(len(parts(c)[0]) > 1 for c in concepts) and any(
        "\n" in parts(c)[1] for c in concepts
    )


@pytest.mark.parametrize("family", ["procedures", "findings", "temperature", "gcs"])
def test_index_answers_like_every_matcher(knowledge: Knowledge, family: str) -> None:
    index: ConceptIndex = getattr(knowledge, family)
    plain = dict(index.items())
    concepts = all_concepts()
    assert len(concepts) > 300
    naive = [naive_match(concept, plain) for concept in concepts]  # the definition, read once
    for _ in range(2):  # the second round answers from the memo
        for concept, expected in zip(concepts, naive, strict=True):
            assert match(concept, index) == expected, concept


def test_the_screen_answers_like_match_on_each_index(knowledge: Knowledge) -> None:
    """recognised_by_any (the observation screen, parts read once) is `match` on each index in turn."""
    indexes = (knowledge.temperature, knowledge.gcs, knowledge.findings)
    concepts = [*all_concepts(), {"text": "Glasgow coma score total"}, {"text": "GCS motor"}]
    hits = 0
    for concept in concepts:
        expected = any(match(concept, index) for index in indexes)
        assert recognised_by_any(concept, indexes) is expected, concept
        hits += expected
    assert 0 < hits < len(concepts)


@pytest.mark.parametrize("family", ["procedures", "findings"])
def test_memoised_spans_are_every_matchers_spans(knowledge: Knowledge, family: str) -> None:
    """spans_for_text (read for an order's reason, memoised) gives every concept's mentions, negated
    ones included, exactly as asking each matcher; a second round answers from the memo unchanged."""
    index: ConceptIndex = getattr(knowledge, family)
    texts = [words(c) for c in all_concepts()] + TRICKY
    naive = [  # the definition, read once per text
        {key: spans for key, m in index.items() if (spans := m.spans(text))} for text in texts
    ]
    for _ in range(2):
        for text, expected in zip(texts, naive, strict=True):
            assert dict(index.spans_for_text(text)) == expected, text
    assert any(index.spans_for_text(t) for t in texts)
    if family == "findings":  # "denies headache": a negated mention is still a span
        assert not index.spans_for_text("denies headache")["headache"][0][2]
