"""Silent mode (SPEC §6): a silenced scenario is evaluated, audited and counted as always, but its
cards are not returned to the EHR; PAMA-style system actions have their own switch. Applied to the
pipeline's `Evaluation` by the shell (the hook route), never inside the pure pipeline."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cds_service.golive.settings import ALL, NONE, GoLiveSettings
from cds_service.knowledge.registry import HookService
from cds_service.pipeline.evaluate import Evaluation
from cds_service.wire import Card, CdsResponse


class SilentModeError(ValueError):
    """CDS_SILENT_SCENARIOS names a scenario no knowledge set has: start-up stops with one line."""


def known_scenarios(services: Mapping[str, HookService]) -> list[str]:
    """Every scenario code of the knowledge sets the services apply, in the knowledge's order."""
    codes: dict[str, None] = {}
    for service in services.values():
        codes.update({str(scenario): None for scenario in service.knowledge.rules.scenarios})
    return list(codes)


@dataclass(frozen=True)
class Delivery:
    """What a hook call returns (`response`) and what silent mode kept back."""

    response: CdsResponse
    withheld: list[Card] = field(default_factory=list)


@dataclass(frozen=True)
class SilentMode:
    scenarios: frozenset[str]  # the silenced scenario codes (`all` expanded)
    all: bool
    system_actions: bool  # True: system actions are not returned
    known: tuple[str, ...] = ()

    @classmethod
    def from_settings(
        cls, settings: GoLiveSettings, services: Mapping[str, HookService]
    ) -> SilentMode:
        known = known_scenarios(services)
        codes = settings.silent_scenario_codes()
        unknown = sorted(codes - {ALL} - set(known))
        if unknown:
            raise SilentModeError(
                f"CDS_SILENT_SCENARIOS: no scenario {', '.join(map(repr, unknown))} in the "
                f"knowledge; use `all` or any of: {', '.join(known)}"
            )
        everything = ALL in codes
        return cls(
            scenarios=frozenset(known) if everything else codes,
            all=everything,
            system_actions=settings.silent_system_actions,
            known=tuple(known),
        )

    @property
    def active(self) -> bool:
        return bool(self.scenarios) or self.system_actions

    @property
    def setting(self) -> str:
        """The scenarios setting in force, as recorded on audit rows: `all`, `none` or the codes."""
        if self.all:
            return ALL
        return ",".join(sorted(self.scenarios)) if self.scenarios else NONE

    def describe(self) -> dict[str, Any]:
        """For /readyz: which scenarios are silent, and whether system actions are."""
        return {
            "scenarios": ALL if self.all else sorted(self.scenarios),
            "systemActions": self.system_actions,
        }

    def is_silent(self, scenario: str | None) -> bool:
        return scenario is not None and scenario in self.scenarios

    def apply(self, evaluation: Evaluation) -> Delivery:
        """The response without the cards of silenced scenarios (a card's scenario is its
        `source.topic.code`), and without system actions when those are silenced."""
        response = evaluation.response
        if not self.active:
            return Delivery(response)
        withheld = [card for card in response.cards if self.is_silent(_scenario(card))]
        update: dict[str, Any] = {}
        if withheld:
            update["cards"] = [c for c in response.cards if not self.is_silent(_scenario(c))]
        if self.system_actions and (response.systemActions or response.extension):
            update["systemActions"] = None
            extension = {
                k: v for k, v in (response.extension or {}).items() if k != "systemActions"
            }
            update["extension"] = extension or None
        if not update:
            return Delivery(response)
        return Delivery(response.model_copy(update=update), withheld)


NOT_SILENT = SilentMode(frozenset(), all=False, system_actions=False)


def _scenario(card: Card) -> str | None:
    topic = card.source.topic
    return topic.code if topic is not None else None


def silent_gauge_values(mode: SilentMode) -> Iterable[tuple[str, float]]:
    """(scenario, 1 when silent else 0) for every scenario of the knowledge."""
    return ((code, 1.0 if code in mode.scenarios else 0.0) for code in mode.known)
