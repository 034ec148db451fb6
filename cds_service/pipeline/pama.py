"""PAMA-style system actions (SPEC §4): an `update` of each evaluated draft order recording its
appropriateness rating, in the manner of the Argonaut "CDS Hooks for PAMA" guidance."""

from __future__ import annotations

from cds_service.knowledge import Knowledge, Rating
from cds_service.pipeline.config import IdFactory
from cds_service.pipeline.domain import ImagingOrder
from cds_service.wire import Action, without_empty

PAMA_RATING = {
    Rating.USUALLY_APPROPRIATE: "appropriate",
    Rating.MAY_BE_APPROPRIATE: "appropriate",
    Rating.USUALLY_NOT_APPROPRIATE: "not-appropriate",
    Rating.NOT_RATED: "no-criteria-apply",
}
PAMA_EXTENSION = "http://fhir.org/argonaut/Extension/pama-rating"
PAMA_CONSULT_ID = "http://fhir.org/argonaut/Extension/pama-rating-consult-id"
PAMA_AUC_APPLIED = "http://fhir.org/argonaut/Extension/pama-rating-auc-applied"
PAMA_SYSTEM = "http://fhir.org/argonaut/CodeSystem/pama-rating"
RATING_SYSTEM = "urn:pdph-imaging:rating"


def system_action(
    order: ImagingOrder, rating: Rating | None, k: Knowledge, new_id: IdFactory
) -> Action:
    """An `update` of the draft order that records its rating, per the Argonaut CDS Hooks for PAMA
    guidance: the order is returned unchanged except for the rating extensions. `rating` is None
    when no scenario applies: the PAMA rating is then `no-criteria-apply`, never `appropriate`."""
    resource = without_empty(order.raw)
    ours = {PAMA_EXTENSION, PAMA_CONSULT_ID, PAMA_AUC_APPLIED}
    extensions = [
        e
        for e in resource.get("extension") or []
        if not (isinstance(e, dict) and e.get("url") in ours)
    ]
    codings: list[dict[str, str]] = [
        {"system": PAMA_SYSTEM, "code": PAMA_RATING[rating or Rating.NOT_RATED]}
    ]
    if rating is not None:
        codings.append(
            {
                "system": RATING_SYSTEM,
                "code": rating.value,
                "display": k.cards.rating_phrases[rating],
            }
        )
    extensions += [
        {"url": PAMA_EXTENSION, "valueCodeableConcept": {"coding": codings}},
        {"url": PAMA_CONSULT_ID, "valueUri": f"urn:uuid:{new_id()}"},
        {"url": PAMA_AUC_APPLIED, "valueUri": k.rules.source.url},
    ]
    resource["extension"] = extensions
    return Action(
        type="update",
        description=f"Record the ACR appropriateness rating on {order.reference}",
        resource=resource,
    )
