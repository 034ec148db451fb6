"""Rendering decisions as CDS Hooks 2.0 cards (SPEC §4): short. A summary naming the ordered study in
the order's own words, a detail of one line of why and one of what to do, and a link to the full
rationale at /explain/<scenario>. Every word comes from the knowledge files (rules.yaml for each
scenario's lines, cards.yaml for labels and phrases); this module only fills the placeholders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cds_service.knowledge import Knowledge, SuggestionPlan
from cds_service.knowledge.model import CardPlan
from cds_service.knowledge.terminology import clip
from cds_service.pipeline.config import EvaluationConfig, IdFactory
from cds_service.pipeline.domain import Decision, Finding, PriorStudy
from cds_service.wire import (
    Action,
    Card,
    CardExtension,
    Coding,
    Link,
    Source,
    Suggestion,
    without_empty,
)

SUMMARY_LIMIT = 139
LABEL_ORDER_WORDS = 60  # characters of the order's own words a suggestion label quotes


@dataclass
class RenderState:
    """What one response has already drafted or suggested, so no card repeats another's creation."""

    drafted_studies: set[str]
    new_id: IdFactory
    now: datetime
    # Repeat groups of the studies done within the recent-study window (never suggested again).
    recent: dict[str, PriorStudy] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)


def render_cards(
    decisions: list[Decision],
    k: Knowledge,
    patient_id: str,
    config: EvaluationConfig,
    now: datetime,
    *,
    base_url: str | None = None,
    studies: Sequence[PriorStudy] = (),
) -> list[Card]:
    oldest = now - timedelta(days=config.thresholds(k).recent_study_days)
    recent: dict[str, PriorStudy] = {}
    for study in studies:
        if study.at.at >= oldest:
            recent.setdefault(k.repeat_group(study.study_type), study)
    state = RenderState({d.order.study_type for d in decisions}, config.new_id, now, recent)
    base = (base_url or config.public_base_url).rstrip("/")
    cards: list[Card] = []
    seen: set[tuple[str, str | None]] = set()
    for group in _groups(decisions, k, config):
        card = _card(group[0], k, patient_id, config, state, base, group)
        # Cards never repeat (SPEC §4): no two of one response share their summary and detail.
        if card is not None and (card.summary, card.detail) not in seen:
            seen.add((card.summary, card.detail))
            cards.append(card)
    return cards


def _groups(
    decisions: list[Decision], k: Knowledge, config: EvaluationConfig
) -> list[list[Decision]]:
    """One group per card: a card about the patient (rules.yaml `about: patient`: thunderclap, red
    flags, altered mental status) appears once per response for every order it concerns, led by an
    order whose card shows; a card about one order is that order's alone (SPEC §4)."""
    groups: dict[object, list[Decision]] = {}
    for d in decisions:
        about_patient = k.rules.scenarios[d.scenario].about == "patient"
        groups.setdefault((d.scenario, d.variant) if about_patient else id(d), []).append(d)

    def shows(d: Decision) -> bool:
        plan = k.card_plan(d.scenario, d.order.study_type, d.variant)
        return plan.card == "show" or config.confirm_appropriate_orders

    return [sorted(g, key=lambda d: not shows(d)) for g in groups.values()]


def placeholders(d: Decision, k: Knowledge, thresholds: Mapping[str, str]) -> dict[str, str]:
    """The values cards.yaml and rules.yaml texts may name (`thresholds`: their texts, formatted
    once, EvaluationConfig.threshold_texts). Texts are filled with format_map(values), not
    format(**values), which copied the twenty-odd values per text: the same result, as every
    placeholder is a name (knowledge/texts.py refuses any other at load)."""
    labels = k.cards.labels
    hours_phrase = ""
    if d.hours_since_puncture is not None and d.puncture is not None:
        template = labels.hours if d.puncture.exact else labels.hours_at_least
        hours_phrase = template.format(hours=f"{d.hours_since_puncture:.0f}")
    if d.puncture is None:
        puncture = labels.no_puncture
    else:
        template = labels.puncture_from_diagnosis if d.puncture.lower_bound else labels.puncture
        puncture = template.format(
            procedure=_mid(d.puncture.description), hours_phrase=hours_phrase
        )
    flag_names = list(dict.fromkeys(k.finding_display(f.kind) for f in d.red_flags))[:3]
    values = {
        "ordered": d.order.description,
        "prior_study": _prior_phrase(d.prior, k),
        "puncture": puncture,
        "hours_phrase": hours_phrase,
        "evidence": _names(d.evidence) or "a headache",
        "red_flags": _names(d.red_flags) or "no red flag recorded",
        # The red flags' names, as the knowledge calls them ("fever and nuchal rigidity").
        "flags": _joined(flag_names, k.cards.labels.and_word) or k.cards.labels.red_flags_word,
        "first_flag": flag_names[0] if flag_names else k.cards.labels.red_flags_word,
        "rating_phrase": k.cards.rating_phrases[d.rating.value],
    }
    values.update(thresholds)
    return values


def study_date(study: PriorStudy) -> str:
    """The calendar day of a study as recorded: a date-only value is read as its latest instant
    (the end of that day at UTC-12), which is the next UTC day at noon."""
    at = study.at.at
    if not study.at.is_exact:
        at -= timedelta(hours=12, seconds=1)
    return at.date().isoformat()


def _prior_phrase(prior: PriorStudy | None, k: Knowledge) -> str:
    labels = k.cards.labels
    if prior is None:
        return labels.no_prior_study
    values = {"study": _mid(prior.description), "date": study_date(prior)}
    if prior.conclusion:
        return labels.prior_study_concluded.format(conclusion=prior.conclusion, **values)
    return labels.prior_study.format(**values)


def _joined(names: list[str], and_word: str) -> str:
    """ "CT head", "CT head and MRI brain", "CT head, MRI brain and MRI spine"."""
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} {and_word} {names[-1]}"


def _names(findings: list[Finding]) -> str:
    seen = list(dict.fromkeys(_mid(f.description) for f in findings))[:3]
    return ", ".join(seen)


def _mid(text: str) -> str:
    """A record's words placed mid-sentence: "Post-dural puncture headache" reads "post-dural
    puncture headache"; acronyms ("MRI brain", "CSE") stay as written."""
    return text if text[:2].isupper() else text[:1].lower() + text[1:]


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:]


def _card(
    d: Decision,
    k: Knowledge,
    patient_id: str,
    config: EvaluationConfig,
    state: RenderState,
    base: str,
    concerned: Sequence[Decision] = (),
) -> Card | None:
    plan = k.card_plan(d.scenario, d.order.study_type, d.variant)
    if plan.card == "confirm" and not config.confirm_appropriate_orders:
        return None
    rules = k.rules.scenarios[d.scenario]
    values = placeholders(d, k, config.threshold_texts(k))
    orders = list(dict.fromkeys(c.order.description for c in concerned)) or [d.order.description]
    values["ordered"] = _joined(orders, k.cards.labels.and_word)
    # Fail-safe (SPEC §2): a card that would discourage imaging while words are left uninterpreted is
    # only information, with no suggestion at all; elsewhere only suggestions that add a study stay.
    plans = [
        p for p in plan.suggestions if d.understood and not (d.uninterpreted and p.kind != "add")
    ]
    suggestions = [s for s in (_suggestion(p, d, k, patient_id, state, config) for p in plans) if s]
    extension: dict[str, Any] = {
        CardExtension.RATING: d.rating.value.value,
        CardExtension.STUDY_TYPE: d.order.study_type,
        CardExtension.DRAFT_ORDER: d.order.reference,
        CardExtension.DRAFT_ORDERS: [c.order.reference for c in concerned] or [d.order.reference],
        CardExtension.KNOWLEDGE: k.fingerprint,
    }
    if d.hours_since_puncture is not None:
        extension[CardExtension.HOURS_SINCE_PUNCTURE] = d.hours_since_puncture
    if not d.understood:
        extension[CardExtension.UNDERSTOOD] = False
    # Prepared with the knowledge: the same codings on every card of the scenario.
    reasons = list(k.card_parts.override_reasons[d.scenario]) if d.understood else []
    summary = plan.summary if d.understood else k.cards.labels.doubt_summary
    return Card(
        uuid=state.new_id(),
        summary=_summary(summary, values),
        detail=_detail(d, k, plan, values),
        indicator=plan.indicator if d.understood else "info",
        source=Source(
            label=k.rules.source.label,
            url=k.rules.source.url,
            topic=Coding(
                system=k.rules.source.topic_system,
                code=str(d.scenario),
                display=rules.title.format_map(values),
            ),
        ),
        suggestions=suggestions or None,
        selectionBehavior=("at-most-one" if len(suggestions) == 1 else "any")
        if suggestions
        else None,
        overrideReasons=reasons or None,
        links=[
            Link(
                label=k.cards.labels.link,
                url=f"{base}/explain/{d.scenario!s}",
                type="absolute",
            )
        ],
        extension=extension,
    )


def _summary(template: str, values: dict[str, str]) -> str:
    """The template filled; when it is too long, the flags named are cut to the first (the detail
    names them all), then the order's own words are shortened, never the advice."""
    summary = _sentence(template.format_map(values))
    if len(summary) > SUMMARY_LIMIT and "{flags}" in template:
        values = values | {"flags": values["first_flag"]}
        summary = _sentence(template.format_map(values))
    ordered = values["ordered"]
    if len(summary) > SUMMARY_LIMIT and ordered in summary:
        room = max(12, len(ordered) - (len(summary) - SUMMARY_LIMIT) - 1)
        summary = _sentence(
            template.format_map(values | {"ordered": ordered[:room].rstrip() + "…"})
        )
    return summary[:SUMMARY_LIMIT]


def _detail(d: Decision, k: Knowledge, plan: CardPlan, values: dict[str, str]) -> str:
    labels = k.cards.labels
    lines = [
        f"**{labels.why}:** {_sentence(plan.why.format_map(values))}",
        f"**{labels.what_to_do}:** {_sentence(plan.what.format_map(values))}",
    ]
    if d.uninterpreted and not d.understood:
        words = ", ".join(f"'{w}'" for w in d.uninterpreted[:8])
        lines.append(labels.uninterpreted.format(words=words))
    if d.pregnant and any(
        k.imaging.orderables[n].in_pregnancy or k.imaging.orderables[n].avoid_in_pregnancy
        for p in plan.suggestions
        for n in p.orderables
    ):
        lines.append(labels.pregnancy)
    if not d.age_known:
        lines.append(labels.age_unknown)
    return "\n\n".join(lines)


def _suggestion(
    plan: SuggestionPlan,
    d: Decision,
    k: Knowledge,
    patient_id: str,
    state: RenderState,
    config: EvaluationConfig,
) -> Suggestion | None:
    if state.drafted_studies & set(plan.unless_drafted):
        return None
    orderables = _for_pregnancy(plan.orderables, k) if d.pregnant else plan.orderables
    if plan.kind != "cancel" and not orderables:
        return None  # every study it would create is avoided in pregnancy
    labels = k.cards.suggestions
    ordered = clip(d.order.description, LABEL_ORDER_WORDS)
    delete = Action(
        type="delete",
        description=f"Cancel the draft order: {d.order.description}",
        resourceId=d.order.reference,
    )

    # A study done counts as done within the recent-study window, or within the plan's own threshold
    # (a CT head excludes a subarachnoid haemorrhage for 6 hours only: thunderclap).
    within = getattr(config.thresholds(k), plan.recent_threshold) if plan.recent_threshold else None

    def done_recently(name: str) -> PriorStudy | None:
        study = k.imaging.orderables[name].study
        prior = state.recent.get(k.repeat_group(study)) if study else None
        if (
            prior is not None
            and within is not None
            and prior.at.at < state.now - timedelta(hours=within)
        ):
            return None
        return prior

    drafted = [n for n in orderables if k.imaging.orderables[n].study in state.drafted_studies]
    done = [n for n in orderables if n not in drafted and done_recently(n)]
    proposed = [n for n in orderables if n in state.created and n not in drafted + done]
    to_create = [n for n in orderables if n not in drafted + done + proposed]
    creates = [_create_action(name, d, k, patient_id, config) for name in to_create]
    if plan.kind == "add" and not creates:
        return None
    state.created.update(to_create)

    def short(names: list[str]) -> str:
        return " and ".join(k.imaging.orderables[n].short for n in names)

    if plan.kind == "cancel":
        label, actions = labels.cancel.format(ordered=ordered), [delete]
    elif plan.kind == "replace" and not creates and done and not drafted + proposed:
        return None  # the recommended study was just done: nothing to replace this order with
    elif plan.kind == "replace" and not creates:
        template = labels.cancel_already_drafted if drafted else labels.cancel_proposed_elsewhere
        label = template.format(ordered=ordered, recommended=short(drafted or proposed))
        actions = [delete]
    elif plan.kind == "replace":
        label = labels.replace.format(ordered=ordered, recommended=short(to_create))
        actions = [delete, *creates]
    else:
        label, actions = labels.add.format(recommended=short(to_create)), creates
    return Suggestion(label=label[:200], uuid=state.new_id(), isRecommended=True, actions=actions)


def _for_pregnancy(names: list[str], k: Knowledge) -> list[str]:
    """The orderables suggested in pregnancy: without gadolinium, and none that irradiates the spine."""
    orderables = k.imaging.orderables
    return [orderables[n].in_pregnancy or n for n in names if not orderables[n].avoid_in_pregnancy]


def _create_action(
    name: str, d: Decision, k: Knowledge, patient_id: str, config: EvaluationConfig
) -> Action:
    """A draft ServiceRequest an EHR can map to an orderable (SPEC §4): codes (the knowledge's CPT or
    LOINC, then the site's own), text, imaging category, the draft's reasons, the scenario's
    priority."""
    orderable = k.card_parts.orderables[name]  # its codes, text and category, prepared
    codings = [dict(c) for c in orderable.codings]
    codings += [dict(c) for c in config.site_orderables.get(name, ())]
    code: dict[str, Any] = {"text": orderable.text}
    if codings:
        code["coding"] = codings
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "code": code,
        "subject": without_empty(d.order.raw.get("subject"))
        or {"reference": f"Patient/{patient_id}"},
    }
    if orderable.category is not None:
        resource["category"] = [{"coding": [dict(orderable.category)]}]
    priority = k.rules.scenarios[d.scenario].priority
    if priority != "routine":
        resource["priority"] = priority
    for carried in ("encounter", "reasonCode", "reasonReference"):
        if value := without_empty(d.order.raw.get(carried)):
            resource[carried] = value
    return Action(type="create", description=f"Order {orderable.text}", resource=resource)
