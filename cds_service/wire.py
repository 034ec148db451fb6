"""CDS Hooks 2.0 wire formats: request, response (cards, suggestions, actions, system actions) and
feedback, as pydantic models. Responses are serialised without nulls (CDS Hooks forbids them) and the
builders never set empty lists or strings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


def without_empty(value: Any) -> Any:
    """A copy of a JSON value without nulls and empty strings, lists or objects, at any depth: what
    the service echoes from a request (the draft order in a system action) must obey the same rule.
    An emptied object or list counts as empty in its parent too."""
    if isinstance(value, dict):
        kept: dict[Any, Any] = {}
        for key, v in value.items():
            if isinstance(v, dict | list):
                v = without_empty(v)
                if v:
                    kept[key] = v
            elif v is not None and v != "":
                kept[key] = v
        return kept
    if isinstance(value, list):
        items: list[Any] = []
        for v in value:
            if isinstance(v, dict | list):
                v = without_empty(v)
                if v:
                    items.append(v)
            elif v is not None and v != "":
                items.append(v)
        return items
    return value


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class FhirAuthorization(_Wire):
    access_token: str = Field(min_length=1)
    token_type: str = "Bearer"
    expires_in: int | None = None
    scope: str | None = None
    subject: str | None = None


class HookContext(_Wire):
    patientId: str = Field(min_length=1, max_length=256)
    userId: str | None = None
    encounterId: str | None = None
    selections: list[str] | None = None
    draftOrders: dict[str, Any]

    @field_validator("draftOrders")
    @classmethod
    def _draft_orders_is_a_bundle(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("resourceType") != "Bundle":
            raise ValueError("context.draftOrders must be a FHIR Bundle")
        entries = value.get("entry", [])
        if not isinstance(entries, list):
            raise ValueError("context.draftOrders.entry must be a list")
        return value


class HookRequest(_Wire):
    hook: str = Field(min_length=1)
    hookInstance: str = Field(min_length=1, max_length=256)
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: HookContext
    prefetch: dict[str, Any] | None = None

    @field_validator("fhirServer")
    @classmethod
    def _fhir_server_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("fhirServer must be an http(s) URL")
        return value


class Coding(BaseModel):
    system: str
    code: str
    display: str | None = None


class Source(BaseModel):
    label: str
    url: str | None = None
    topic: Coding | None = None


class Action(BaseModel):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    # CDS Hooks 2.0, Action.resourceId: a string, the relative reference of the resource to delete.
    resourceId: str | None = None


class Link(BaseModel):
    label: str
    url: str
    type: Literal["absolute", "smart"]


class Suggestion(BaseModel):
    label: str
    uuid: str
    isRecommended: bool | None = None
    actions: list[Action]


class CardExtension:
    """The keys of a card's `extension` (SPEC §4): one place, read by the renderer, the feedback
    bookkeeping and the replay harness."""

    RATING = "pdph-imaging.rating"
    STUDY_TYPE = "pdph-imaging.study-type"
    DRAFT_ORDER = "pdph-imaging.draft-order"
    DRAFT_ORDERS = "pdph-imaging.draft-orders"
    KNOWLEDGE = "pdph-imaging.knowledge"
    HOURS_SINCE_PUNCTURE = "pdph-imaging.hours-since-puncture"
    UNDERSTOOD = "pdph-imaging.understood"


class Card(BaseModel):
    uuid: str
    summary: str = Field(max_length=139)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None
    extension: dict[str, Any] | None = None


class CdsResponse(BaseModel):
    cards: list[Card]
    systemActions: list[Action] | None = None
    extension: dict[str, Any] | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class OverrideReason(_Wire):
    reason: Coding | None = None
    userComment: str | None = Field(default=None, max_length=10_000)


class AcceptedSuggestion(_Wire):
    id: str = Field(min_length=1, max_length=256)


class FeedbackItem(_Wire):
    card: str = Field(min_length=1, max_length=256)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: datetime

    @field_validator("outcomeTimestamp")
    @classmethod
    def _timestamp_has_zone(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("outcomeTimestamp needs a time zone offset")
        try:
            value.astimezone(UTC)  # stored in UTC: 0001-01-01T00:00+01:00 has no UTC equivalent
        except OverflowError:
            raise ValueError("outcomeTimestamp is out of range") from None
        return value


class FeedbackRequest(_Wire):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=1000)
