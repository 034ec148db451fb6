"""Tolerant reading of FHIR resources with the R4B models, one resource at a time: an invalid resource
is skipped and logged (its type, position and the failing fields, never its content) and the others
are still used. Only resources a rule can use are validated, which keeps large patients cheap."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

log = logging.getLogger(__name__)

MODELS: dict[str, Any] = {
    "Patient": Patient,
    "Procedure": Procedure,
    "Condition": Condition,
    "Observation": Observation,
    "ServiceRequest": ServiceRequest,
}

M = TypeVar("M")


@dataclass(frozen=True)
class Parsed(Generic[M]):
    """A validated resource: `model` for typed fields (dates, statuses), `raw` for codes and text."""

    raw: dict[str, Any]
    model: M


def read_resources(
    resources: Iterable[dict[str, Any]],
    model: type[M],
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> list[Parsed[M]]:
    """Validate the resources of `model`'s type that `keep` accepts; skip and log invalid ones."""
    resource_type = model.__name__
    parsed: list[Parsed[M]] = []
    for position, raw in enumerate(resources):
        if raw.get("resourceType") != resource_type or (keep is not None and not keep(raw)):
            continue
        try:
            parsed.append(Parsed(raw, model.model_validate(raw)))  # type: ignore[attr-defined]
        except (ValidationError, ValueError, TypeError) as exc:
            fields = sorted(
                {".".join(str(p) for p in e["loc"]) for e in exc.errors()}
                if isinstance(exc, ValidationError)
                else set()
            )
            log.warning(
                "resource_skipped",
                extra={
                    "resource_type": resource_type,
                    "position": position,
                    "invalid_fields": fields[:5],
                },
            )
    return parsed
