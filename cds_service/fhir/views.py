"""Tolerant reading of FHIR resources, one resource at a time: an invalid resource is skipped and logged
(its type, position and the failing fields, never its content) and the others are still used.

Two things keep large patients cheap. Only resources a rule can use are validated (the callers'
`keep` prefilter reads the raw dict). And a resource is validated as a *view*: a small pydantic model
of just the elements the rules read, typed with the FHIR R4B primitive types of fhir.resources
(`fhir_core.types`: the same regular expressions and the same datetime/date/partial-date values;
dates and times through cds_service/fhir/primitives.py, fhir_core's with a shorter way through),
with FHIR's cardinalities for those elements and its one-of rule for choice elements ([x]). Elements
no rule reads are not validated: a resource that is wrong only there is used, not skipped. Full
fhir.resources models cost about ten times more per resource and would check nothing a rule relies
on; tests/test_perf_views.py checks that views and the R4B models agree on every fixture resource and
on the usual kinds of bad entry."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from fhir_core.types import (
    BooleanType,
    CodeType,
    DecimalType,
    IdType,
    IntegerType,
    StringType,
    UriType,
)
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from typing_extensions import TypedDict

from cds_service.fhir.primitives import DateTimeType, DateType, InstantType
from cds_service.fhir.time import Instant, latest_instant

log = logging.getLogger(__name__)


class _Element(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# The elements no rule reads from a view (codes, words and references are read from the raw
# resource): validated as typed dicts, a third cheaper than nested models and the same checks,
# errors and error locations (a union names its member by the class name, kept). They hold the
# keys the resource has. tests/test_perf_views.py compares them with the R4B models' values.
class Coding(TypedDict, total=False):
    system: UriType | None
    code: CodeType | None
    display: StringType | None


class CodeableConcept(TypedDict, total=False):
    coding: list[Coding] | None
    text: StringType | None


class Reference(TypedDict, total=False):
    reference: StringType | None
    display: StringType | None


class Period(_Element):
    start: DateTimeType | None = None
    end: DateTimeType | None = None


class Quantity(_Element):
    value: DecimalType | None = None
    unit: StringType | None = None
    system: UriType | None = None
    code: CodeType | None = None


class ResourceView(_Element):
    """The elements of one resource type that the rules read. `choices` lists, per choice element,
    every FHIR R4B type suffix, so two values for one choice element make the resource invalid as
    the R4B model would say, even for suffixes the view does not read."""

    resource_type: ClassVar[str]
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}

    id: IdType | None = None

    _choice_keys: ClassVar[tuple[tuple[str, tuple[str, ...]], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._choice_keys = tuple(
            (prefix, tuple(prefix + suffix for suffix in suffixes))
            for prefix, suffixes in cls.choices.items()
        )

    @model_validator(mode="before")
    @classmethod
    def _one_value_per_choice(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for prefix, keys in cls._choice_keys:
                present = [key for key in keys if data.get(key) is not None]
                if len(present) > 1:
                    raise ValueError(f"{prefix}[x] has more than one value: {present}")
        return data


class PatientView(ResourceView):
    resource_type = "Patient"
    birthDate: DateType | None = None


class ProcedureView(ResourceView):
    resource_type = "Procedure"
    choices = {"performed": ("DateTime", "Period", "String", "Age", "Range")}
    status: CodeType
    code: CodeableConcept | None = None
    subject: Reference
    performedDateTime: DateTimeType | None = None
    performedPeriod: Period | None = None

    def performed_at(self) -> Instant | None:
        """performedPeriod.end, else performedDateTime, else performedPeriod.start, as the latest
        instant it can denote; None when the time cannot be placed (performedString, no value)."""
        period = self.performedPeriod
        for value in (
            period.end if period else None,
            self.performedDateTime,
            period.start if period else None,
        ):
            if value is not None:
                return latest_instant(value)
        return None


class ConditionView(ResourceView):
    """R4, and the DSTU2/STU3 shapes the CDS Hooks sandbox's default server sends (SPEC §3): `patient`
    instead of `subject`, string clinicalStatus/verificationStatus, `dateRecorded` (DSTU2) or
    `assertedDate` (STU3) instead of recordedDate."""

    resource_type = "Condition"
    choices = {"onset": ("DateTime", "Age", "Period", "Range", "String")}
    clinicalStatus: CodeableConcept | CodeType | None = None
    verificationStatus: CodeableConcept | CodeType | None = None
    code: CodeableConcept | None = None
    subject: Reference | None = None
    patient: Reference | None = None
    onsetDateTime: DateTimeType | None = None
    onsetPeriod: Period | None = None
    recordedDate: DateTimeType | None = None
    dateRecorded: DateTimeType | None = None
    assertedDate: DateTimeType | None = None

    @model_validator(mode="after")
    def _has_a_subject(self) -> ConditionView:
        if self.subject is None and self.patient is None:
            raise ValueError("Condition has neither subject nor patient")
        return self


class ObservationView(ResourceView):
    resource_type = "Observation"
    choices = {
        "effective": ("DateTime", "Period", "Timing", "Instant"),
        "value": (
            "Quantity",
            "CodeableConcept",
            "String",
            "Boolean",
            "Integer",
            "Range",
            "Ratio",
            "SampledData",
            "Time",
            "DateTime",
            "Period",
        ),
    }
    status: CodeType
    code: CodeableConcept
    subject: Reference | None = None
    effectiveDateTime: DateTimeType | None = None
    effectivePeriod: Period | None = None
    effectiveInstant: InstantType | None = None
    issued: InstantType | None = None
    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None
    valueString: StringType | None = None
    valueBoolean: BooleanType | None = None
    valueInteger: IntegerType | None = None
    dataAbsentReason: CodeableConcept | None = None


class DiagnosticReportView(ResourceView):
    resource_type = "DiagnosticReport"
    choices = {"effective": ("DateTime", "Period")}
    status: CodeType
    category: list[CodeableConcept] | None = None
    code: CodeableConcept
    subject: Reference | None = None
    effectiveDateTime: DateTimeType | None = None
    effectivePeriod: Period | None = None
    issued: InstantType | None = None
    conclusion: StringType | None = None
    conclusionCode: list[CodeableConcept] | None = None


class ImagingStudySeries(_Element):
    description: StringType | None = None
    started: DateTimeType | None = None


class ImagingStudyView(ResourceView):
    resource_type = "ImagingStudy"
    status: CodeType
    subject: Reference
    started: DateTimeType | None = None
    procedureCode: list[CodeableConcept] | None = None
    description: StringType | None = None
    series: list[ImagingStudySeries] | None = None


class ServiceRequestView(ResourceView):
    resource_type = "ServiceRequest"
    status: CodeType
    intent: CodeType
    code: CodeableConcept | None = None
    subject: Reference
    encounter: Reference | None = None
    reasonCode: list[CodeableConcept] | None = None
    reasonReference: list[Reference] | None = None


V = TypeVar("V", bound=ResourceView)


@dataclass(frozen=True)
class Parsed(Generic[V]):
    """A validated resource: `model` for typed fields (dates, statuses), `raw` for codes and text."""

    raw: dict[str, Any]
    model: V


def read_resources(
    resources: Iterable[dict[str, Any]],
    view: type[V],
    keep: Callable[[dict[str, Any]], bool] | None = None,
    invalid: list[dict[str, Any]] | None = None,
) -> list[Parsed[V]]:
    """Validate the resources of `view`'s type that `keep` accepts; skip and log invalid ones (and
    append them to `invalid`, for a caller that must not lose what they prove, such as a puncture
    whose date is unreadable)."""
    resource_type = view.resource_type
    parsed: list[Parsed[V]] = []
    for position, raw in enumerate(resources):
        if raw.get("resourceType") != resource_type or (keep is not None and not keep(raw)):
            continue
        try:
            parsed.append(Parsed(raw, view.model_validate(raw)))
        except (ValidationError, ValueError, TypeError) as exc:
            fields = sorted(
                {".".join(str(p) for p in e["loc"]) or "resource" for e in exc.errors()}
                if isinstance(exc, ValidationError)
                else set()
            )
            if invalid is not None:
                invalid.append(raw)
            log.warning(
                "resource_skipped",
                extra={
                    "resource_type": resource_type,
                    "position": position,
                    "invalid_fields": fields[:5],
                },
            )
    return parsed
