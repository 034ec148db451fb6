"""Recognising concepts in raw FHIR CodeableConcepts: codes first, words when no code is known."""

from __future__ import annotations

from typing import Any

from cds_service.knowledge import NO_KEYS, ConceptIndex, Knowledge
from cds_service.knowledge.matching import remember


def coding_dicts(concept: Any) -> list[dict[str, Any]]:
    """The codings of a raw CodeableConcept that are objects (raw data may hold anything there)."""
    found = concept.get("coding") if isinstance(concept, dict) else None
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def describe(concept: Any, fallback: str) -> str:
    """A short human name for a CodeableConcept, for cards: its text, else a coding's display, else
    `fallback` (the caller passes the knowledge's name for the concept it recognised)."""
    if isinstance(concept, dict):
        if isinstance(concept.get("text"), str) and concept["text"]:
            return str(concept["text"])
        for coding in coding_dicts(concept):
            if isinstance(coding.get("display"), str) and coding["display"]:
                return str(coding["display"])
    return fallback  # never a raw code: the knowledge's own name for what was recognised


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def parts(concept: Any) -> tuple[tuple[tuple[str, str], ...], str]:
    """What a raw CodeableConcept says: (system, code) of every well-formed coding, and its words
    (its text and every coding display, one per line), read in one pass: recognition runs on every
    resource of a large record."""
    if not isinstance(concept, dict):
        return (), ""
    pairs: list[tuple[str, str]] = []
    text = concept.get("text")
    lines = [text] if isinstance(text, str) and text else []
    coding = concept.get("coding")
    if isinstance(coding, list):
        for c in coding:
            if not isinstance(c, dict):
                continue
            system, code, display = c.get("system"), c.get("code"), c.get("display")
            if isinstance(system, str) and isinstance(code, str):
                pairs.append((system, code))
            if isinstance(display, str) and display:
                lines.append(display)
    return tuple(pairs), lines[0] if len(lines) == 1 else "\n".join(lines)


def concept_key(concept: Any) -> tuple[object, ...] | None:
    """What recognition reads of a raw CodeableConcept, as a key: its text, then system, code and
    display of every coding that is an object (in order); None when it is no object. Two concepts
    with equal keys have equal `parts`, so the same keys in any index: a long record repeats a few
    concepts hundreds of times, and this costs a fraction of reading them again."""
    if not isinstance(concept, dict):
        return None
    coding = concept.get("coding")
    # The usual shapes (JSON's own list and objects, one or two codings) as one tuple at once.
    if type(coding) is list and 0 < len(coding) < 3:
        first = coding[0]
        if len(coding) == 1 and type(first) is dict:
            return (
                concept.get("text"),
                first.get("system"),
                first.get("code"),
                first.get("display"),
            )
        second = coding[-1]
        if len(coding) == 2 and type(first) is dict and type(second) is dict:
            return (
                concept.get("text"),
                first.get("system"),
                first.get("code"),
                first.get("display"),
                second.get("system"),
                second.get("code"),
                second.get("display"),
            )
    key = [concept.get("text")]
    if isinstance(coding, list):
        for c in coding:
            if isinstance(c, dict):
                key += (c.get("system"), c.get("code"), c.get("display"))
    return tuple(key)


def _keys(concept: Any, key: tuple[object, ...], index: ConceptIndex) -> frozenset[str]:
    """`match`, memoised per index by the concept's key."""
    cache = index.concept_cache
    try:
        found = cache.get(key)
    except TypeError:  # an unhashable value (a list where a string belongs): read it as it is
        return _match(concept, index)
    if found is None:
        found = _match(concept, index)
        remember(cache, key, found)
    return found


def recognised_by_any(concept: Any, indexes: tuple[ConceptIndex, ...]) -> bool:
    """Whether any of `indexes` recognises the concept (as `match` would), its key read once: the
    screen a large record's every resource goes through."""
    key = concept_key(concept)
    return key is not None and any(_keys(concept, key, index) for index in indexes)


def match(concept: Any, index: ConceptIndex) -> frozenset[str]:
    """Keys of the concepts recognised in a CodeableConcept: by any of its codes, and by its words
    (text and displays) where they affirm a concept. Both count: a coded headache whose text says
    "worst headache of her life" is also a thunderclap onset, and missing a red flag written in words
    is the dangerous error (SPEC §2)."""
    key = concept_key(concept)
    return NO_KEYS if key is None else _keys(concept, key, index)


def _match(concept: Any, index: ConceptIndex) -> frozenset[str]:
    pairs, text = parts(concept)
    found = NO_KEYS
    for system, code in pairs:
        keys = index.keys_for_code(system, code)
        if keys:
            found = found | keys
    if not text:
        return found
    keys = index.keys_for_text(text)
    return found | keys if keys else found


def has_standard_code(concept: Any, k: Knowledge) -> bool:
    """A coding under ICD-10-CM or SNOMED CT (any alias) with a code: understood by its code (SPEC
    §2). Asked of every recent Condition: one set lookup per coding."""
    found = concept.get("coding") if isinstance(concept, dict) else None
    if isinstance(found, list):  # coding_dicts, without building the list: asked of every row
        for coding in found:
            if isinstance(coding, dict):
                system = coding.get("system")
                if isinstance(system, str) and system in k.standard_systems and coding.get("code"):
                    return True
    return False


def problem_codes(concept: Any, k: Knowledge) -> tuple[frozenset[str], bool]:
    """The findings a Condition's code names (`match` on the findings) and whether it carries a
    standard code (`has_standard_code`), memoised together by the concept's key: a problem list
    asks both of every row, and most rows are the same few chronic problems."""
    key = concept_key(concept)
    if key is None:
        return NO_KEYS, False
    try:
        found = k.problem_cache.get(key)
    except TypeError:  # an unhashable value where a string belongs: read it as it is
        return match(concept, k.findings), has_standard_code(concept, k)
    if found is None:
        found = (match(concept, k.findings), has_standard_code(concept, k))
        remember(k.problem_cache, key, found)
    return found


def uninterpreted_words(concept: Any, k: Knowledge) -> list[str]:
    """Words of one CodeableConcept that no rule accounts for (SPEC §2, fail-safe rule). Accounted for:
    the display of a recognised code, the words of every recognised concept (finding or procedure,
    negated or not), negation cues and filler words. A coding that is not recognised and has no
    words of its own is itself uninterpreted. Memoised per concept's content (bounded): reasons and
    problem-list texts recur."""
    if not isinstance(concept, dict):
        return []
    key = (
        concept.get("text") if isinstance(concept.get("text"), str) else None,
        tuple(
            (c.get("system"), c.get("code"), c.get("display"))
            for c in coding_dicts(concept)
            if all(
                v is None or isinstance(v, str)
                for v in (c.get("system"), c.get("code"), c.get("display"))
            )
        ),
    )
    found = k.unread_cache.get(key)
    if found is None:
        found = tuple(_uninterpreted(concept, k))
        remember(k.unread_cache, key, found)
    return list(found)


def _uninterpreted(concept: Any, k: Knowledge) -> list[str]:
    texts: list[str] = []
    left: list[str] = []
    text = concept.get("text") if isinstance(concept, dict) else None
    if isinstance(text, str) and text.strip():
        texts.append(text)
    for coding in coding_dicts(concept):
        system, code, display = coding.get("system"), coding.get("code"), coding.get("display")
        known = (
            isinstance(system, str)
            and isinstance(code, str)
            and bool(
                k.findings.keys_for_code(system, code) or k.procedures.keys_for_code(system, code)
            )
        )
        if known:
            continue
        if isinstance(display, str) and display.strip():
            texts.append(display)
        elif isinstance(code, str) and not texts:
            left.append(f"code {code}")
    for text in texts:
        spans = [
            (start, end)
            for index in (k.findings, k.procedures)
            for mentions in index.spans_for_text(text).values()
            for start, end, _ in mentions
        ]
        left += k.language.uninterpreted(text, spans)
    return left
