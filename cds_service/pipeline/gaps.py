"""Draft orders that look like imaging but that the classifier cannot place (SPEC §3 and §6, vocabulary
gaps): the service does not evaluate them, and says so to its informaticist instead of staying
silent. Pure: no I/O; the shell (the hook route) counts and stores what this finds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cds_service.knowledge import Knowledge
from cds_service.knowledge.terminology import coding_dicts
from cds_service.pipeline.classify import classify_study
from cds_service.pipeline.orders import draft_resources

CPT = "http://www.ama-assn.org/go/cpt"
# Categories of imaging orders: SNOMED CT 363679005 Imaging (FHIR R4 servicerequest-category), HL7 v2
# table 0074 RAD, and the words EHRs write there.
IMAGING_CATEGORY_CODES = frozenset({"363679005", "RAD", "imaging", "radiology"})
IMAGING_CATEGORY_WORDS = re.compile(r"imaging|radiolog", re.IGNORECASE)
# Modality words of an imaging order's name, beyond the knowledge's own (imaging.yaml `text.modality`).
MODALITY_WORDS = re.compile(
    r"\b(CT[AV]?|MR[AIV]?|NMR|X-?rays?|XR|myelo\w*|\w*angio\w*|\w*venogra\w*|radiograph\w*"
    r"|fluoro\w*|cisternogra\w*|tomogra\w*|PET|SPECT|NM)\b",
    re.IGNORECASE,
)
# Catalogue abbreviations in capitals that hold CT or MR ("NCHCT", "CTH w/o", "MRCP"); not MRSA.
MODALITY_ABBREVIATIONS = re.compile(r"\b(?!MRSA\b)[A-Z]{0,3}(CT|MR)[A-Z]{0,3}\b")
CPT_RADIOLOGY = re.compile(r"^7\d{4}$")  # CPT 70010-79999: the Radiology section


@dataclass(frozen=True)
class UnclassifiedOrder:
    """A draft ServiceRequest that looks like imaging and that no study type fits."""

    reference: str  # "ServiceRequest/<id>", or "ServiceRequest" when it has no id
    name: str | None  # its code.text, else its first coding display
    codes: tuple[tuple[str, str, str | None], ...]  # (system, code, display) of each coding


def unclassified_imaging_orders(
    draft_orders: dict[str, Any], k: Knowledge, selections: list[str] | None = None
) -> list[UnclassifiedOrder]:
    """The draft ServiceRequests (only the selected ones when `selections` is given) that look like
    imaging (an imaging or radiology category, a modality word in their name, or a CPT radiology
    code) but for which `classify_study` returns None. Each order once."""
    wanted = (
        None if selections is None else {s.split("/")[-1] for s in selections if isinstance(s, str)}
    )
    found: dict[str, UnclassifiedOrder] = {}
    for raw in draft_resources(draft_orders):
        if raw.get("resourceType") != "ServiceRequest":
            continue
        order_id = raw.get("id")
        if wanted is not None and order_id not in wanted:
            continue
        reference = f"ServiceRequest/{order_id}" if isinstance(order_id, str) else "ServiceRequest"
        concept = raw.get("code")
        if reference in found or classify_study(concept, k) is not None:
            continue
        name = _name(concept)
        codes = tuple(
            (c["system"], c["code"], c["display"] if isinstance(c.get("display"), str) else None)
            for c in coding_dicts(concept)
            if isinstance(c.get("system"), str)
            and isinstance(c.get("code"), str)
            and c["code"].strip()
        )
        if _looks_like_imaging(raw, name, codes, k):
            found[reference] = UnclassifiedOrder(reference, name, codes)
    return list(found.values())


def _name(concept: Any) -> str | None:
    if not isinstance(concept, dict):
        return None
    text = concept.get("text")
    if isinstance(text, str) and text.strip():
        return text.strip()
    for coding in coding_dicts(concept):
        display = coding.get("display")
        if isinstance(display, str) and display.strip():
            return display.strip()
    return None


def _looks_like_imaging(
    raw: dict[str, Any],
    name: str | None,
    codes: tuple[tuple[str, str, str | None], ...],
    k: Knowledge,
) -> bool:
    categories = raw.get("category")
    for category in categories if isinstance(categories, list) else []:
        text = category.get("text") if isinstance(category, dict) else None
        if isinstance(text, str) and IMAGING_CATEGORY_WORDS.search(text):
            return True
        for coding in coding_dicts(category):
            code, display = coding.get("code"), coding.get("display")
            if isinstance(code, str) and code.strip() in IMAGING_CATEGORY_CODES:
                return True
            if isinstance(display, str) and IMAGING_CATEGORY_WORDS.search(display):
                return True
    cpt = k.systems.names.get("cpt", CPT)
    if any(k.systems.canonical(s) == cpt and CPT_RADIOLOGY.match(c.strip()) for s, c, _ in codes):
        return True
    words = [name or "", *(d for _, _, d in codes if d)]
    modality = k.imaging_text.get("modality", {})
    return any(
        MODALITY_WORDS.search(text)
        or MODALITY_ABBREVIATIONS.search(text)
        or any(p.search(text) for ps in modality.values() for p in ps)
        for text in words
        if text
    )
