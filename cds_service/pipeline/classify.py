"""What study an imaging code or text denotes (CT head, MRI head without and with, MRI spine, CT
myelography, DSM...): one classifier for draft orders and for the imaging already done. The rules are
data (imaging.yaml `codes`, `text`, `classify`, `refine`); this module only applies them."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cds_service.knowledge import Knowledge
from cds_service.knowledge.matching import remember
from cds_service.knowledge.model import ClassifyRule
from cds_service.knowledge.terminology import concept_key, parts

_CONTRASTS = ("without-and-with", "without", "with")


_UNSEEN = object()


def classify_study(concept: Any, k: Knowledge) -> str | None:
    """The study type of an order's code, or None when it is not head or spine imaging. Records
    repeat the same codes and words over and over: answers are memoised (bounded), by the concept's
    key first (what `parts` reads, without reading it again), then by its parts."""
    key = concept_key(concept)
    if key is None:
        return None  # no object: no codes and no words
    try:
        found = k.study_cache.get(key, _UNSEEN)
    except TypeError:  # an unhashable value where a string belongs
        return _classify(*parts(concept), k)
    if found is _UNSEEN:
        found = _classify(*parts(concept), k)
        remember(k.study_cache, key, found)
    return found  # type: ignore[return-value]


@lru_cache(maxsize=4096)
def _classify(pairs: tuple[tuple[str, str], ...], text: str, k: Knowledge) -> str | None:
    keys = (k.systems.key(system, code) for system, code in pairs)
    coded = next((k.study_by_code[key] for key in keys if key in k.study_by_code), None)
    if coded is not None:
        found = _parts_found(text, k) if text else frozenset()
        refined = (r for r in k.imaging.refine if coded in r.from_ and _holds(r, found))
        return next((r.study for r in refined), coded)
    return classify_text(text, k) if text else None


def classify_text(text: str, k: Knowledge) -> str | None:
    """The study an order's words name: the first `classify` rule that holds, or None (never a
    guess)."""
    found = _parts_found(text, k)
    rule = next((r for r in k.imaging.classify if _holds(r, found)), None)
    if rule is None:
        return None
    if "{contrast}" not in rule.study:
        return rule.study
    contrast = next((c for c in _CONTRASTS if f"contrast.{c}" in found), rule.contrast_default)
    return rule.study.replace("{contrast}", contrast or "unspecified")


def _parts_found(text: str, k: Knowledge) -> frozenset[str]:
    """The "part.key" names of imaging.yaml `text` whose patterns match `text`: only the patterns
    the prefilter leaves are tried (the others cannot match: tests/test_prefilter.py)."""
    found: set[str] = set()
    for at in k.imaging_prefilter.candidates(text):
        name, compiled = k.imaging_patterns[at]
        if name not in found and compiled.search(text):
            found.add(name)
    return frozenset(found)


def _holds(rule: ClassifyRule, found: frozenset[str]) -> bool:
    return (
        all(p in found for p in rule.all)
        and (not rule.any or any(p in found for p in rule.any))
        and not any(p in found for p in rule.none)
        and (
            rule.at_least is None
            or sum(p in found for p in rule.at_least.parts) >= rule.at_least.count
        )
    )
