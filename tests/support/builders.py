"""Small builders of realistic FHIR R4 resources and CDS Hooks requests for table-driven tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.conftest import NOW

CPT = "http://www.ama-assn.org/go/cpt"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
PID = "pat-1"


def at(hours_ago: float, now: datetime = NOW) -> str:
    return (now - timedelta(hours=hours_ago)).isoformat()


def concept(
    system: str | None = None, code: str | None = None, text: str | None = None
) -> dict[str, Any]:
    c: dict[str, Any] = {}
    if system and code:
        c["coding"] = [{"system": system, "code": code}]
    if text:
        c["text"] = text
    return c


def procedure(
    code: dict[str, Any], when: Any, status: str = "completed", **extra: Any
) -> dict[str, Any]:
    p: dict[str, Any] = {
        "resourceType": "Procedure",
        "status": status,
        "subject": {"reference": f"Patient/{PID}"},
        "code": code,
    }
    if when is not None:
        p["performedDateTime"] = when
    p.update(extra)
    return p


def lumbar_puncture(hours_ago: float, **extra: Any) -> dict[str, Any]:
    return procedure(concept(CPT, "62270", "Lumbar puncture"), at(hours_ago), **extra)


def blood_patch(hours_ago: float) -> dict[str, Any]:
    return procedure(concept(CPT, "62273", "Epidural blood patch"), at(hours_ago))


def condition(
    code: dict[str, Any],
    onset: str | None,
    clinical: str | None = "active",
    verification: str | None = "confirmed",
) -> dict[str, Any]:
    c: dict[str, Any] = {
        "resourceType": "Condition",
        "subject": {"reference": f"Patient/{PID}"},
        "code": code,
    }
    if clinical:
        c["clinicalStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": clinical,
                }
            ]
        }
    if verification:
        c["verificationStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": verification,
                }
            ]
        }
    if onset:
        c["onsetDateTime"] = onset
    return c


def pdph(hours_ago: float = 20) -> dict[str, Any]:
    return condition(concept(ICD10CM, "G97.1", "Post-dural puncture headache"), at(hours_ago))


def headache(hours_ago: float = 20) -> dict[str, Any]:
    return condition(concept(SNOMED, "25064002", "Headache"), at(hours_ago))


def temperature(value: float, hours_ago: float = 1, unit: str = "Cel") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "8310-5"}]},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": at(hours_ago),
        "valueQuantity": {"value": value, "code": unit, "system": "http://unitsofmeasure.org"},
    }


def patient(birth_date: str | None = "1980-01-01") -> dict[str, Any]:
    p: dict[str, Any] = {"resourceType": "Patient", "id": PID}
    if birth_date:
        p["birthDate"] = birth_date
    return p


def service_request(
    rid: str, code: dict[str, Any], reason: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    sr: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PID}"},
        "code": code,
    }
    if reason:
        sr["reasonCode"] = [reason]
    sr.update(extra)
    return sr


MRI_BRAIN_WWO = concept(CPT, "70553", "MRI brain without and with contrast")


def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}


def hook_request(
    orders: list[dict[str, Any]],
    resources: list[dict[str, Any]] = (),  # type: ignore[assignment]
    hook: str = "order-sign",
    prefetch: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "hook": hook,
        "hookInstance": "test-instance",
        "context": {"userId": "Practitioner/1", "patientId": PID, "draftOrders": bundle(orders)},
    }
    if hook == "order-select":
        request["context"]["selections"] = [f"ServiceRequest/{orders[0]['id']}"]
    if prefetch is None:
        resources = list(resources)
        prefetch = {
            "patient": patient(),
            "procedures": bundle([r for r in resources if r["resourceType"] == "Procedure"]),
            "conditions": bundle([r for r in resources if r["resourceType"] == "Condition"]),
            "observations": bundle([r for r in resources if r["resourceType"] == "Observation"]),
            "imagingReports": bundle(
                [r for r in resources if r["resourceType"] == "DiagnosticReport"]
            ),
            "imagingStudies": bundle([r for r in resources if r["resourceType"] == "ImagingStudy"]),
        }
    request["prefetch"] = prefetch
    request.update(extra)
    return request


def evaluate_now(
    request: dict[str, Any], now: datetime = NOW, hooks_dir: Any = None, **overrides: Any
) -> Any:
    """Run the pure part of the pipeline on a request whose prefetch is complete (with the shipped
    knowledge, or the one in `hooks_dir`)."""
    from cds_service.config import HOOKS_DIR
    from cds_service.knowledge.registry import load_services
    from cds_service.pipeline.config import EvaluationConfig
    from cds_service.pipeline.evaluate import evaluate_resolved, imaging_orders
    from cds_service.pipeline.resolve import prefetch_resources
    from cds_service.wire import HookRequest
    from tests.support.settings import read_settings

    services = load_services(hooks_dir) if hooks_dir else _services(HOOKS_DIR, load_services)
    service = services[f"pdph-imaging-{request['hook']}"]
    parsed = HookRequest.model_validate(request)
    resources = {k: prefetch_resources(v) or [] for k, v in (parsed.prefetch or {}).items()}
    config = EvaluationConfig.from_settings(read_settings("sqlite:///:memory:", **overrides))
    return evaluate_resolved(
        parsed, service, imaging_orders(parsed, service), resources, config, now
    )


_CACHE: dict[str, Any] = {}


def _services(hooks_dir: Any, loader: Any) -> Any:
    if "services" not in _CACHE:
        _CACHE["services"] = loader(hooks_dir)
    return _CACHE["services"]


def empty_values(value: Any, path: str = "response") -> list[str]:
    """Paths of nulls and empty strings, lists or objects: CDS Hooks 2.0 forbids them."""
    if value is None or value == "" or value == [] or value == {}:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in empty_values(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in empty_values(v, f"{path}[{i}]")]
    return []


def ct_report(conclusion: str | None, hours_ago: float = 4, **extra: Any) -> dict[str, Any]:
    """A final radiology report of a CT head without contrast, with its conclusion in words."""
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "category": [{"coding": [{"system": LOINC, "code": "LP29684-5"}]}],
        "code": concept(CPT, "70450", "CT head without contrast"),
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": at(hours_ago),
        **extra,
    }
    if conclusion is not None:
        report["conclusion"] = conclusion
    return report


def suggested_actions(*cards: dict[str, Any]) -> list[dict[str, Any]]:
    """Every action of every suggestion of the cards, in order."""
    return [a for c in cards for s in c.get("suggestions", []) for a in s["actions"]]


def action_types(*cards: dict[str, Any]) -> set[str]:
    """What the cards offer to do: "delete", "create"."""
    return {a["type"] for a in suggested_actions(*cards)}


def created_codes(*cards: dict[str, Any]) -> set[str]:
    """The codes of every order the cards offer to create."""
    return {
        c["code"]
        for a in suggested_actions(*cards)
        if a["type"] == "create"
        for c in a["resource"]["code"].get("coding", [])
    }


def created_texts(*cards: dict[str, Any]) -> list[str]:
    """The names of every order the cards offer to create."""
    return [
        a["resource"]["code"]["text"] for a in suggested_actions(*cards) if a["type"] == "create"
    ]
