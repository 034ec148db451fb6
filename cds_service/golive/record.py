"""What a hook call leaves for go-live monitoring, besides its audit rows: the vocabulary gaps it met
(imaging-looking draft orders no study type fits; words the fail-safe rule could not interpret) and
its counters. Marked harness and demo calls leave nothing here."""

from __future__ import annotations

from datetime import datetime

from cds_service.golive.metrics import UNCLASSIFIED_ORDERS, UNINTERPRETED_WORDS
from cds_service.knowledge.registry import HookService
from cds_service.persistence.gaps import GapKind, GapSighting, fold
from cds_service.pipeline.evaluate import Evaluation
from cds_service.pipeline.gaps import unclassified_imaging_orders
from cds_service.wire import HookRequest

CODE_WORD = "code "  # how the fail-safe rule names a reason code it could not read (terminology.py)


def vocabulary_gaps(
    service: HookService, request: HookRequest, evaluation: Evaluation, now: datetime
) -> list[GapSighting]:
    """The gaps one hook call met, counted in metrics; stored by the audit writer."""
    context = request.context
    selections = context.selections if service.declaration.evaluate == "selections" else None
    k = service.knowledge
    unclassified = unclassified_imaging_orders(context.draftOrders, k, selections)
    decided = [str(d.scenario) for d in evaluation.decisions]
    example = decided[0] if decided else None

    def sighting(
        kind: GapKind, system: str, term: str, text: str, scenario: str | None
    ) -> GapSighting:
        return GapSighting(
            hook_instance=request.hookInstance,
            service_id=service.id,
            knowledge=service.declaration.knowledge,
            kind=kind,
            system=system,
            term=term,
            text=text,
            patient_id=context.patientId,
            seen_at=now,
            scenario=scenario,
        )

    found: list[GapSighting] = []
    for order in unclassified:
        if order.name:
            found.append(sighting("order-name", "", fold(order.name), order.name, example))
        for system, code, display in order.codes:
            found.append(sighting("order-code", system, code.strip(), display or code, example))
    words = 0
    for decision in evaluation.decisions:
        words += len(decision.uninterpreted)
        for word in decision.uninterpreted:
            scenario = str(decision.scenario)
            if word.startswith(CODE_WORD):
                code = word.removeprefix(CODE_WORD)
                found.append(sighting("reason-code", "", code, code, scenario))
            else:
                found.append(sighting("word", "", fold(word), word, scenario))
    if unclassified:
        UNCLASSIFIED_ORDERS.labels(service.id).inc(len(unclassified))
    if words:
        UNINTERPRETED_WORDS.labels(service.id).inc(words)
    return found
