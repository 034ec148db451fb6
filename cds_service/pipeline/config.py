"""What an evaluation needs besides the request: built once at start-up from the settings, so no
request merges settings again. The clock is passed per call; the id factory is injected so the pure
pipeline is deterministic in tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cds_service.knowledge import Knowledge
from cds_service.knowledge.model import Thresholds
from cds_service.knowledge.texts import threshold_values

if TYPE_CHECKING:  # the engine reads the settings it is given; it never loads them
    from cds_service.config import Settings

IdFactory = Callable[[], str]


def new_uuid() -> str:
    """A random (version 4) UUID as text, what `str(uuid.uuid4())` gives, without building a UUID
    object: the renderer asks for one per card, suggestion and system action."""
    h = os.urandom(16).hex()
    # The version nibble is 4; the variant's two high bits are 10 (8, 9, a or b).
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


_VARIANT = "89ab"


@dataclass(frozen=True)
class EvaluationConfig:
    confirm_appropriate_orders: bool = False
    system_actions: bool = True
    system_actions_in_extension: bool = False
    fhir_timeout_s: float = 2.0
    fhir_max_pages: int = 10
    # Site overrides of the knowledge's thresholds (CDS_ACUTE_WINDOW_HOURS...), unset ones left out.
    threshold_overrides: dict[str, float] = field(default_factory=dict)
    # Where the explanation pages are served (cards link to <base>/explain/<scenario>); the hook
    # route passes the URL it was called at when CDS_PUBLIC_BASE_URL is unset.
    public_base_url: str = "http://127.0.0.1:8080"
    # A site's own orderable codes per recommended study (CDS_SITE_ORDERABLES), added to the
    # knowledge's codes on every created order.
    site_orderables: dict[str, tuple[dict[str, str], ...]] = field(default_factory=dict)
    new_id: IdFactory = new_uuid
    _merged: dict[int, Thresholds] = field(default_factory=dict, compare=False, repr=False)
    _texts: dict[int, dict[str, str]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, **changes: Any) -> EvaluationConfig:
        overrides = {
            name: value
            for name in (
                "acute_window_hours",
                "lookback_days",
                "fever_celsius",
                "observation_window_hours",
                "sih_lookback_days",
                "recent_study_days",
            )
            if (value := getattr(settings, name)) is not None
        }
        values: dict[str, Any] = {
            "confirm_appropriate_orders": settings.confirm_appropriate_orders,
            "system_actions": settings.system_actions,
            "system_actions_in_extension": settings.system_actions_in_extension,
            "fhir_timeout_s": settings.fhir_timeout_s,
            "fhir_max_pages": settings.fhir_max_pages,
            "threshold_overrides": overrides,
            "site_orderables": {
                name: tuple(codings) for name, codings in settings.site_orderables.items()
            },
        }
        if settings.public_base_url:
            values["public_base_url"] = settings.public_base_url
        return cls(**(values | changes))

    def thresholds(self, k: Knowledge) -> Thresholds:
        """The knowledge file's thresholds with the site's overrides, merged once per knowledge."""
        merged = self._merged.get(id(k))
        if merged is None:
            merged = self._merged[id(k)] = k.rules.thresholds.model_copy(
                update=self.threshold_overrides
            )
        return merged

    def threshold_texts(self, k: Knowledge) -> Mapping[str, str]:
        """Every merged threshold as a text may show it ("72", "38"), formatted once per knowledge."""
        texts = self._texts.get(id(k))
        if texts is None:
            texts = self._texts[id(k)] = threshold_values(self.thresholds(k))
        return texts
