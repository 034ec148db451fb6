"""Recognising concepts in raw FHIR CodeableConcepts: codes first, words when no code is known."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cds_service.knowledge import NO_KEYS, ConceptIndex


def coding_dicts(concept: Any) -> list[dict[str, Any]]:
    """The codings of a raw CodeableConcept that are objects (raw data may hold anything there)."""
    found = concept.get("coding") if isinstance(concept, dict) else None
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def codings(concept: Any) -> Iterator[tuple[str, str]]:
    """(system, code) of every well-formed coding of a CodeableConcept dict."""
    for coding in coding_dicts(concept):
        system, code = coding.get("system"), coding.get("code")
        if isinstance(system, str) and isinstance(code, str):
            yield system, code


def words(concept: Any) -> str:
    """The human text of a CodeableConcept: its text and every coding display, one per line."""
    if not isinstance(concept, dict):
        return ""
    parts = [concept.get("text")]
    parts.extend(c.get("display") for c in coding_dicts(concept))
    return "\n".join(p for p in parts if isinstance(p, str) and p)


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


def match(concept: Any, index: ConceptIndex) -> frozenset[str]:
    """Keys of the concepts recognised in a CodeableConcept: by any of its codes, and by its words
    (text and displays) where they affirm a concept. Both count: a coded headache whose text says
    "worst headache of her life" is also a thunderclap onset, and missing a red flag written in words
    is the dangerous error (SPEC §2). One pass over the codings (this runs on every resource of a
    large record): the same answer as `codings` then `words`."""
    if not isinstance(concept, dict):
        return NO_KEYS
    found = NO_KEYS
    text = concept.get("text")
    parts = [text] if isinstance(text, str) and text else []
    coding = concept.get("coding")
    if isinstance(coding, list):
        for c in coding:
            if not isinstance(c, dict):
                continue
            system, code, display = c.get("system"), c.get("code"), c.get("display")
            if isinstance(system, str) and isinstance(code, str):
                keys = index.keys_for_code(system, code)
                if keys:
                    found = found | keys
            if isinstance(display, str) and display:
                parts.append(display)
    if not parts:
        return found
    keys = index.keys_for_text(parts[0] if len(parts) == 1 else "\n".join(parts))
    return found | keys if keys else found
