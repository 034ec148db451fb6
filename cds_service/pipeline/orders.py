"""Draft imaging orders: which draft ServiceRequests are head or spine imaging, what study each is, and
what reason the order states (pure: no I/O)."""

from __future__ import annotations

from typing import Any

from cds_service.fhir.bundle import entry_resources
from cds_service.fhir.views import ServiceRequestView, read_resources
from cds_service.knowledge import Knowledge
from cds_service.knowledge.terminology import (
    describe,
    has_standard_code,
    match,
    parts,
    uninterpreted_words,
)
from cds_service.pipeline.classify import classify_study
from cds_service.pipeline.domain import Finding, ImagingOrder, OrderReason


def _listed(value: Any) -> list[Any]:
    """A JSON array as a list; anything else (absent, an object, a number) as no items."""
    return value if isinstance(value, list) else []


def draft_resources(draft_orders: dict[str, Any]) -> list[dict[str, Any]]:
    """Every resource of the draftOrders Bundle, whatever its type."""
    return entry_resources(draft_orders) or []


def draft_imaging_orders(
    draft_orders: dict[str, Any], selections: list[str] | None, k: Knowledge
) -> list[ImagingOrder]:
    """Head/spine imaging ServiceRequests among the draft orders; only the selected ones when
    `selections` is given. Each order appears once, whatever the bundle repeats."""
    raw = draft_resources(draft_orders)
    wanted = (
        None if selections is None else {s.split("/")[-1] for s in selections if isinstance(s, str)}
    )
    orders: dict[str, ImagingOrder] = {}
    for item in read_resources(raw, ServiceRequestView):
        order_id = item.model.id
        if order_id is None:  # counted by order_anomalies
            continue
        if (
            wanted is not None and order_id not in wanted
        ) or f"ServiceRequest/{order_id}" in orders:
            continue
        study = classify_study(item.raw.get("code"), k)
        if study is None:
            continue
        reference = f"ServiceRequest/{order_id}"
        orders[reference] = ImagingOrder(
            reference,
            study,
            describe(item.raw.get("code"), k.imaging.studies[study].name),
            item.raw,
        )
    return list(orders.values())


def order_anomalies(draft_orders: dict[str, Any], selections: list[str] | None) -> list[str]:
    """What a pure stage noticed about the draft orders, for the shell to log and count: selections
    that name no draft order (an EHR bug), draft ServiceRequests without an id."""
    raw = draft_resources(draft_orders)
    found: list[str] = []
    wanted = {s.split("/")[-1] for s in selections or [] if isinstance(s, str)}
    if wanted and not any(isinstance(r.get("id"), str) and r["id"] in wanted for r in raw):
        found.append("selection-matches-no-draft-order")
    if any(r.get("resourceType") == "ServiceRequest" and not r.get("id") for r in raw):
        found.append("draft-order-without-id")
    return found


def order_reason(
    order: ImagingOrder, index: dict[str, dict[str, Any]], k: Knowledge
) -> OrderReason:
    """Findings in the order's reasonCode and reasonReference (resolved against the patient's
    resources or the order's contained resources, else the reference's display), and in its notes
    (the clinical indication some EHRs write there). Notes are read like reasons, negations and
    fail-safe included (a word no rule accounts for removes the cancel), but do not make a reason
    `stated`: an order whose only words are "please sedate" still lets the record speak."""
    readable, notes = _stated(order.raw, index)
    findings = [
        Finding(kind, describe(concept, k.finding_display(kind)), None, origin)
        for group, origin in ((readable, "order reason"), (notes, "order note"))
        for concept in group
        for kind in match(concept, k.findings)
    ]
    uninterpreted = [w for concept in readable + notes for w in uninterpreted_words(concept, k)]
    return OrderReason(
        stated=bool(readable),
        findings=findings,
        uninterpreted=list(dict.fromkeys(uninterpreted)),
        coded=any(has_standard_code(concept, k) for concept in readable),
    )


def _stated(
    raw: dict[str, Any], index: dict[str, dict[str, Any]]
) -> tuple[list[Any], list[dict[str, str]]]:
    """What a draft order states: its readable reasons (reasonCode, and reasonReference resolved
    against its contained resources or the patient's, else the reference's display) and its notes.
    Any JSON may be here (a draft order of any type is read): what is not of its FHIR shape is none."""
    concepts: list[Any] = list(_listed(raw.get("reasonCode")))
    contained = {f"#{r.get('id')}": r for r in _listed(raw.get("contained")) if isinstance(r, dict)}
    for reference in _listed(raw.get("reasonReference")):
        if not isinstance(reference, dict):
            continue
        target = reference.get("reference")
        resource = contained.get(target) or index.get(target) if isinstance(target, str) else None
        if isinstance(resource, dict):
            concepts.append(resource.get("code"))
        elif isinstance(reference.get("display"), str):
            concepts.append({"text": reference["display"]})
    notes = [
        {"text": note["text"]}
        for note in _listed(raw.get("note"))
        if isinstance(note, dict) and isinstance(note.get("text"), str) and note["text"].strip()
    ]
    return [c for c in concepts if any(parts(c))], notes


def stated_urgent_findings(
    draft_orders: dict[str, Any], index: dict[str, dict[str, Any]], k: Knowledge
) -> list[tuple[str, Finding]]:
    """Red flags, thunderclap onsets and altered mental status stated on any draft ServiceRequest of
    the session (its reasons, notes or name; a neurology consult "r/o SAH", a lumbar puncture "r/o
    meningitis", a "CT head code stroke"), each with the reference of the order stating it and, as
    its origin, where: "order reason", "order note" or "order name". They are the diagnostic
    questions asked about the patient: every imaging order of the session is decided with them, so
    one response never says "image now" on one card and "cancel" on another. A medication's reason
    is not read: an antipyretic "for fever" as needed is no fever."""
    urgent = k.urgent_findings
    found: list[tuple[str, Finding]] = []
    for raw in draft_resources(draft_orders):
        if raw.get("resourceType") != "ServiceRequest":
            continue
        readable, notes = _stated(raw, index)
        name = raw.get("code")
        where = describe(name, "another draft order")
        sources = [(c, "order reason") for c in readable] + [(c, "order note") for c in notes]
        for concept, origin in [*sources, (name, "order name")]:
            for kind in match(concept, k.findings):
                if kind in urgent:
                    asked = " in question" if origin == "order name" else ""
                    text = f"{k.finding_display(kind)}{asked} ({where})"
                    found.append(
                        (f"ServiceRequest/{raw.get('id')}", Finding(kind, text, None, origin))
                    )
    return found
