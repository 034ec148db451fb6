"""Unit tests of the pure stages on typed inputs (no request, no app): facts, decide and render are
functions from typed values to typed values, deterministic with an injected clock and id factory."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

from cds_service.fhir.time import Instant, Precision
from cds_service.knowledge import Knowledge, Scenario
from cds_service.pipeline.config import EvaluationConfig
from cds_service.pipeline.decide import decide
from cds_service.pipeline.domain import (
    Finding,
    ImagingOrder,
    OrderReason,
    PatientFacts,
    ProcedureEvent,
)
from cds_service.pipeline.facts import patient_facts
from cds_service.pipeline.render import render_cards
from cds_service.wire import without_empty
from tests.support.builders import lumbar_puncture, pdph
from tests.support.clock import NOW

MRI = ImagingOrder(
    reference="ServiceRequest/sr-1",
    study_type="mri-head-without-and-with",
    description="MRI brain without and with contrast",
    raw={"resourceType": "ServiceRequest", "id": "sr-1", "subject": {"reference": "Patient/p"}},
)
NO_REASON = OrderReason(stated=False, findings=[])


def instant(hours_ago: float) -> Instant:
    return Instant(NOW - timedelta(hours=hours_ago), Precision.INSTANT)


def facts(puncture_hours: float | None, *kinds: str) -> PatientFacts:
    punctures = (
        [ProcedureEvent("lumbar puncture", instant(puncture_hours))] if puncture_hours else []
    )
    findings = [Finding(kind, kind, instant(10), "problem list") for kind in kinds]
    return PatientFacts(age_years=40, punctures=punctures, findings=findings)


def config() -> EvaluationConfig:
    ids = count(1)
    return EvaluationConfig(new_id=lambda: f"id-{next(ids)}")


def test_patient_facts_from_resources(knowledge: Knowledge) -> None:
    resources = {"procedures": [lumbar_puncture(30)], "conditions": [pdph(20)]}
    result = patient_facts(resources, "pat-1", knowledge, NOW, config().thresholds(knowledge))
    assert [p.at.at for p in result.punctures] == [NOW - timedelta(hours=30)]
    # G97.1 by its code, and its text "Post-dural puncture headache" is a headache too.
    assert {f.kind for f in result.findings} == {"post-dural-puncture-headache", "headache"}
    assert result.uncertain_punctures == [] and result.studies == []


def test_decide_on_typed_facts(knowledge: Knowledge) -> None:
    t = config().thresholds(knowledge)
    cases = [
        (facts(30, "headache"), Scenario.PDPH_ACUTE),
        (facts(100, "headache"), Scenario.PDPH_PERSISTENT),
        (facts(30, "headache", "fever"), Scenario.PDPH_ACUTE_RED_FLAGS),
        (facts(None, "orthostatic-headache"), Scenario.SIH),
        (facts(100, "thunderclap-headache"), Scenario.THUNDERCLAP),
        (facts(30, "headache", "altered-mental-status"), Scenario.ALTERED_MENTAL_STATUS),
    ]
    for patient, expected in cases:
        decision = decide(MRI, NO_REASON, patient, knowledge, t, NOW)
        assert decision is not None and decision.scenario is expected, (patient, expected)
    assert decide(MRI, NO_REASON, facts(30), knowledge, t, NOW) is None  # no headache evidence


def test_render_is_deterministic_with_an_injected_id_factory(knowledge: Knowledge) -> None:
    t = config().thresholds(knowledge)
    decision = decide(MRI, NO_REASON, facts(100, "orthostatic-headache"), knowledge, t, NOW)
    assert decision is not None
    first = render_cards([decision], knowledge, "p", config(), NOW, base_url="https://cds.test")
    second = render_cards([decision], knowledge, "p", config(), NOW, base_url="https://cds.test")
    assert [c.model_dump() for c in first] == [c.model_dump() for c in second]
    [card] = first
    assert card.suggestions and card.suggestions[0].uuid == "id-1" and card.uuid == "id-2"
    assert card.links and card.links[0].url == "https://cds.test/explain/pdph-persistent"


def test_echoed_resources_lose_every_empty_value_at_any_depth() -> None:
    """CDS Hooks forbids nulls: what the service echoes from a draft order (system actions, carried
    reasons) is cleaned at every depth, and a container emptied by the cleaning goes too."""
    draft = {
        "resourceType": "ServiceRequest",
        "id": "sr-1",
        "note": [],
        "priority": None,
        "code": {"text": "", "coding": [{"system": "http://loinc.org", "code": "24590-2"}, {}]},
        "reasonCode": [{"text": None, "coding": [{"display": ""}]}, "", None],
        "extension": [{"url": "x", "valueBoolean": False}, {"url": "y", "valueInteger": 0}],
        "contained": [{"resourceType": "Condition", "code": {"coding": [None, {"code": None}]}}],
    }
    assert without_empty(draft) == {
        "resourceType": "ServiceRequest",
        "id": "sr-1",
        "code": {"coding": [{"system": "http://loinc.org", "code": "24590-2"}]},
        "extension": [{"url": "x", "valueBoolean": False}, {"url": "y", "valueInteger": 0}],
        "contained": [{"resourceType": "Condition"}],
    }
    assert draft["note"] == [] and draft["priority"] is None  # the request itself is untouched
    assert without_empty([None, "", [], {}]) == [] and without_empty("x") == "x"
