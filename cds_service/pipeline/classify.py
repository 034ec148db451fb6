"""What study an imaging code or text denotes (CT head, MRI head without and with, MRI spine, CT
myelography, DSM...): one classifier for draft orders and for the imaging already done."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from cds_service.knowledge import Knowledge
from cds_service.knowledge.terminology import parts

_MYELOGRAPHY_STUDIES = {"myelography", "ct-spine"}


def _any(patterns: list[re.Pattern[str]], text: str) -> bool:
    return any(p.search(text) for p in patterns)


def classify_study(concept: Any, k: Knowledge) -> str | None:
    """The study type of an order's code, or None when it is not head or spine imaging. Records
    repeat the same codes and words over and over: answers are memoised (bounded)."""
    return _classify(*parts(concept), k)


@lru_cache(maxsize=4096)
def _classify(pairs: tuple[tuple[str, str], ...], text: str, k: Knowledge) -> str | None:
    vocab = k.imaging_text
    keys = (k.systems.key(system, code) for system, code in pairs)
    coded = next((k.study_by_code[key] for key in keys if key in k.study_by_code), None)
    if coded is not None:
        if coded in _MYELOGRAPHY_STUDIES and _any(vocab["modality"]["dsm"], text):
            return "dsm-complete-spine"
        if coded == "myelography" and _any(vocab["modality"]["ct"], text):
            return "ct-myelography"
        if coded == "ct-spine" and _any(vocab["modality"]["myelography"], text):
            return "ct-myelography"
        return coded
    return classify_text(text, k) if text else None


def classify_text(text: str, k: Knowledge) -> str | None:
    """Modality + body region + contrast read from an order's words."""
    modality, region, contrast = (k.imaging_text[p] for p in ("modality", "region", "contrast"))
    is_head = _any(region["head"], text)
    spine_regions = [
        r for r in ("spine-cervical", "spine-thoracic", "spine-lumbar") if _any(region[r], text)
    ]
    is_spine = (
        bool(spine_regions) or _any(region["spine"], text) or _any(region["spine-complete"], text)
    )
    if _any(modality["dsm"], text):
        return "dsm-complete-spine"
    if _any(modality["myelography"], text) and not _any(modality["mri"], text):
        return "ct-myelography" if _any(modality["ct"], text) else "myelography"
    if not (is_head or is_spine):
        return None
    if is_head and _any(modality["cta"], text):
        return "cta-head"
    if _any(modality["other"], text) or _any(modality["myelography"], text):
        return "other-head-spine"
    with_contrast = next(
        (c for c in ("without-and-with", "without", "with") if _any(contrast[c], text)), None
    )
    if _any(modality["mri"], text):
        if is_head:
            return f"mri-head-{with_contrast or 'unspecified'}"
        if _any(region["spine-complete"], text) or len(spine_regions) > 1:
            return "mri-spine-complete"
        return f"mri-{spine_regions[0]}" if spine_regions else "mri-spine-unspecified"
    if _any(modality["ct"], text):
        if is_head:
            # A CT head that states no contrast is the default non-contrast protocol.
            return f"ct-head-{with_contrast or 'without'}"
        return "ct-spine"
    return None
