"""Rendering decisions as CDS Hooks 2.0 cards and PAMA-style system actions (SPEC §4). One builder for
every scenario: what differs between scenarios is data in hooks/<knowledge>/rules.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cds_service.knowledge import Knowledge, Rating, Scenario, SuggestionPlan
from cds_service.pipeline.config import EvaluationConfig, IdFactory
from cds_service.pipeline.decide import Decision
from cds_service.pipeline.orders import ImagingOrder
from cds_service.wire import Action, Card, Coding, Source, Suggestion, without_empty

SUMMARY_LIMIT = 139
RATING_WORDS = {
    Rating.USUALLY_APPROPRIATE: "usually appropriate",
    Rating.MAY_BE_APPROPRIATE: "may be appropriate",
    Rating.USUALLY_NOT_APPROPRIATE: "usually not appropriate",
    Rating.NOT_RATED: "not rated by the ACR",
}
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


@dataclass
class RenderState:
    """What one response has already drafted or suggested, so no card repeats another's creation."""

    drafted_studies: set[str]
    new_id: IdFactory
    created: set[str] = field(default_factory=set)


def render_cards(
    decisions: list[Decision], k: Knowledge, patient_id: str, config: EvaluationConfig
) -> list[Card]:
    state = RenderState({d.order.study_type for d in decisions}, config.new_id)
    cards: list[Card] = []
    for decision in decisions:
        card = _card(decision, k, patient_id, config.confirm_appropriate_orders, state)
        if card is not None:
            cards.append(card)
    return cards


def _card(
    d: Decision, k: Knowledge, patient_id: str, confirm_appropriate: bool, state: RenderState
) -> Card | None:
    plan = k.card_plan(d.scenario, d.order.study_type)
    if plan.card == "confirm" and not confirm_appropriate:
        return None
    rules = k.rules.scenarios[d.scenario]
    # Fail-safe (SPEC §2): no one-click cancel or replace unless the order's reason was understood.
    plans = [p for p in plan.suggestions if not (d.uninterpreted and p.kind != "add")]
    suggestions = [
        s for s in (_suggestion(p, d, k, patient_id, state) for p in plans) if s is not None
    ]
    extension: dict[str, Any] = {
        "pdph-imaging.rating": d.rating.value.value,
        "pdph-imaging.study-type": d.order.study_type,
        "pdph-imaging.draft-order": d.order.reference,
        "pdph-imaging.knowledge": k.fingerprint,
    }
    if d.hours_since_puncture is not None:
        extension["pdph-imaging.hours-since-puncture"] = d.hours_since_puncture
    reasons = [
        Coding(
            system=k.rules.override_reason_system, code=code, display=k.rules.override_reasons[code]
        )
        for code in rules.override_reasons
    ]
    return Card(
        uuid=state.new_id(),
        summary=_summary(plan.summary, d, k),
        detail=_detail(d, k, plan.suggestions),
        indicator=plan.indicator,
        source=Source(
            label=k.rules.source.label,
            url=k.rules.source.url,
            topic=Coding(
                system=k.rules.source.topic_system, code=d.scenario.value, display=rules.title
            ),
        ),
        suggestions=suggestions or None,
        selectionBehavior=("at-most-one" if len(suggestions) == 1 else "any")
        if suggestions
        else None,
        overrideReasons=reasons or None,
        extension=extension,
    )


def _hours_phrase(d: Decision) -> str:
    if d.hours_since_puncture is None or d.puncture is None:
        return ""
    hours = f"{d.hours_since_puncture:.0f} h"
    return hours if d.puncture.exact else f"at least {hours}"


def _summary(template: str, d: Decision, k: Knowledge) -> str:
    values = {
        "rating_phrase": RATING_WORDS[d.rating.value],
        "hours_phrase": _hours_phrase(d),
    }
    study = k.imaging.studies[d.order.study_type].name
    summary = template.format(study=study, **values)
    if len(summary) > SUMMARY_LIMIT:
        room = max(10, len(study) - (len(summary) - SUMMARY_LIMIT) - 1)
        summary = template.format(study=study[:room].rstrip() + "…", **values)
    return " ".join(summary.split())[:SUMMARY_LIMIT]


def _rating_line(study_type: str, scenario: Scenario, k: Knowledge) -> str:
    study = k.imaging.studies[study_type]
    cell = k.rating(scenario, study_type)
    if cell.value is Rating.NOT_RATED:
        rated = "not rated: the ACR gives no rating for this study in this scenario"
    else:
        source = k.rules.rating_sources[cell.source] if cell.source else ""
        rated = f"**{RATING_WORDS[cell.value]}** ({source}{'; ' + cell.note if cell.note else ''})"
    radiation = study.rrl or "not stated in the source articles"
    return f"{study.name}: {rated}. Relative radiation level: {radiation}."


def _detail(d: Decision, k: Knowledge, plans: list[SuggestionPlan]) -> str:
    rules = k.rules.scenarios[d.scenario]
    lines = [f"**{rules.title}.**", "", "**Why this card**"]
    if d.puncture is not None and d.puncture.lower_bound:
        lines.append(
            f"- Dural puncture: not recorded as a procedure, but proven by {d.puncture.description},"
            f" diagnosed {d.hours_since_puncture:.0f} hours ago: the puncture is at least that old."
        )
    elif d.puncture is not None:
        when = (
            f"{d.hours_since_puncture:.0f} hours ago"
            if d.puncture.exact
            else (
                f"recorded as a {d.puncture.at.precision.value} only: at least "
                f"{d.hours_since_puncture:.0f} hours ago"
            )
        )
        lines.append(f"- Dural puncture: {d.puncture.description}, {when}.")
    else:
        lines.append("- No dural puncture recorded in the look-back period.")
    if d.blood_patch is not None:
        lines.append(f"- Epidural blood patch: {d.blood_patch.description}, after the puncture.")
    lines.append("- Headache evidence: " + _list_findings(d.evidence) + ".")
    lines.append(
        "- Red flags: " + (_list_findings(d.red_flags) if d.red_flags else "none recorded") + "."
    )
    lines.append(f"- Ordered: {d.order.description}.")
    if d.uninterpreted:
        lines.append(
            "- The order's reason has words this service did not interpret ("
            + ", ".join(f"'{w}'" for w in d.uninterpreted)
            + "): no one-click cancel or replace is offered; the advice stands."
        )
    if not d.age_known:
        lines.append(
            "- Age unknown (no birth date): evaluated as an adult, as the ACR variants are."
        )
    lines += [
        "",
        "**ACR rating of the ordered study**",
        _rating_line(d.order.study_type, d.scenario, k),
    ]
    recommended = [
        k.imaging.orderables[name].study
        for plan in plans
        for name in plan.orderables
        if k.imaging.orderables[name].study
    ]
    if recommended:
        lines += ["", "**Recommended study**"]
        lines += [f"- {_rating_line(s, d.scenario, k)}" for s in recommended if s is not None]
    lines += ["", rules.advice.strip()]
    if rules.next_steps:
        lines += ["", f"**Next steps.** {rules.next_steps.strip()}"]
    if rules.watch_for:
        lines += ["", f"**Watch for.** {rules.watch_for.strip()}"]
    return "\n".join(lines)


def _list_findings(findings: list[Any]) -> str:
    seen: dict[str, None] = {}
    for f in findings:
        seen.setdefault(f"{f.description} ({f.origin})", None)
    return "; ".join(seen) if seen else "none"


def _suggestion(
    plan: SuggestionPlan, d: Decision, k: Knowledge, patient_id: str, state: RenderState
) -> Suggestion | None:
    study_name = k.imaging.studies[d.order.study_type].name
    delete = Action(
        type="delete",
        description=f"Cancel the draft order: {d.order.description}",
        resourceId=d.order.reference,
    )
    to_create = [
        name
        for name in plan.orderables
        if name not in state.created
        and k.imaging.orderables[name].study not in state.drafted_studies
    ]
    creates = [_create_action(name, d, k, patient_id) for name in to_create]
    if plan.kind == "add" and not creates:
        return None
    state.created.update(to_create)
    names = " and ".join(k.imaging.orderables[n].code.text for n in to_create)
    if plan.kind == "cancel" or (plan.kind == "replace" and not creates):
        label = f"Cancel {study_name}"
        if plan.kind == "replace":
            label += " (recommended study already ordered)"
        actions = [delete]
    elif plan.kind == "replace":
        label, actions = f"Replace with {names}", [delete, *creates]
    else:
        label, actions = f"Add {names}", creates
    return Suggestion(label=label[:200], uuid=state.new_id(), isRecommended=True, actions=actions)


def _create_action(name: str, d: Decision, k: Knowledge, patient_id: str) -> Action:
    orderable = k.imaging.orderables[name]
    code: dict[str, Any] = {"text": orderable.code.text}
    if orderable.code.coding:
        code["coding"] = [
            {"system": k.coding_system(c.system), "code": c.code}
            | ({"display": c.display} if c.display else {})
            for c in orderable.code.coding
        ]
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "code": code,
        "subject": without_empty(d.order.raw.get("subject"))
        or {"reference": f"Patient/{patient_id}"},
    }
    for carried in ("encounter", "reasonCode", "reasonReference"):
        if value := without_empty(d.order.raw.get(carried)):
            resource[carried] = value
    return Action(type="create", description=f"Order {orderable.code.text}", resource=resource)


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
            {"system": RATING_SYSTEM, "code": rating.value, "display": RATING_WORDS[rating]}
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
