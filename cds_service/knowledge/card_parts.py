"""What a card carries that no patient changes, built once when the knowledge loads (SPEC §7): the
override reasons each scenario offers, as the wire's codings, and the static part of every order a
suggestion creates (its codes, text and imaging category). The renderer only adds what the patient
and the order decide. Shared by every response: never modified after it is built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cds_service.knowledge.model import ImagingFile, RulesFile
from cds_service.wire import Coding


@dataclass(frozen=True)
class OrderableParts:
    """The knowledge's part of a created ServiceRequest: codings (without the site's own), text and
    category (None for an orderable that is no imaging study)."""

    codings: tuple[Mapping[str, str], ...]
    text: str
    category: Mapping[str, Any] | None


@dataclass(frozen=True)
class CardParts:
    override_reasons: Mapping[str, tuple[Coding, ...]]  # per scenario, in the order it lists them
    orderables: Mapping[str, OrderableParts]


def card_parts(rules: RulesFile, imaging: ImagingFile, systems: Mapping[str, str]) -> CardParts:
    """`systems`: the knowledge's code system names and their URIs (valuesets.yaml `systems`)."""
    reasons = {
        name: tuple(
            Coding(
                system=rules.override_reason_system,
                code=code,
                display=rules.override_reasons[code],
            )
            for code in scenario.override_reasons
        )
        for name, scenario in rules.scenarios.items()
    }
    category = imaging.order_category
    category_coding = MappingProxyType(
        {
            "system": systems[category.system],
            "code": category.code,
            "display": category.display or category.code,
        }
    )
    orderables = {
        name: OrderableParts(
            codings=tuple(
                MappingProxyType(
                    {"system": systems[c.system], "code": c.code}
                    | ({"display": c.display} if c.display else {})
                )
                for c in orderable.code.coding
            ),
            text=orderable.code.text,
            category=category_coding if orderable.imaging else None,
        )
        for name, orderable in imaging.orderables.items()
    }
    return CardParts(MappingProxyType(reasons), MappingProxyType(orderables))
