"""The go-live metrics (SPEC §6, docs/go-live.md): what each scenario would have fired, what the service
could not read, and the settings in force. Calls marked as harness or demo traffic are not counted.
Labels are bounded sets (services, scenarios, knowledge versions): never an order name or a word."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Gauge

from cds_service.golive.silent import SilentMode, silent_gauge_values
from cds_service.knowledge.registry import HookService

SCENARIO_FIRED = Counter(
    "cds_scenario_fired_total",
    "Evaluated draft imaging orders a scenario applied to, by CDS service, scenario and delivery: "
    "shown (its card returned), withheld (silent mode kept its card back) or no-card.",
    ["service", "scenario", "delivery"],
)
UNCLASSIFIED_ORDERS = Counter(
    "cds_unclassified_imaging_orders_total",
    "Draft orders that look like imaging but that no study type fits (not evaluated): the "
    "vocabulary gaps report lists them (/analytics/vocabulary-gaps).",
    ["service"],
)
UNINTERPRETED_WORDS = Counter(
    "cds_uninterpreted_words_total",
    "Words the fail-safe rule could not interpret, per evaluated draft order (each word once per "
    "order): the vocabulary gaps report lists them.",
    ["service"],
)
SILENT_MODE = Gauge(
    "cds_silent_mode",
    "1 when silent mode withholds the scenario's cards (CDS_SILENT_SCENARIOS), else 0.",
    ["scenario"],
    multiprocess_mode="livemax",
)
SILENT_SYSTEM_ACTIONS = Gauge(
    "cds_silent_system_actions",
    "1 when system actions are computed but not returned (CDS_SILENT_SYSTEM_ACTIONS), else 0.",
    multiprocess_mode="livemax",
)
KNOWLEDGE_INFO = Gauge(
    "cds_knowledge_info",
    "1 for the knowledge set (version+hash) each CDS service applies.",
    ["service", "knowledge"],
    multiprocess_mode="livemax",
)


def publish_settings(mode: SilentMode, services: Mapping[str, HookService]) -> None:
    """The silent-mode setting and the knowledge versions in force, as gauges (set at start-up)."""
    for scenario, value in silent_gauge_values(mode):
        SILENT_MODE.labels(scenario).set(value)
    SILENT_SYSTEM_ACTIONS.set(1 if mode.system_actions else 0)
    KNOWLEDGE_INFO.clear()  # only the versions this process applies now
    for service_id, service in services.items():
        KNOWLEDGE_INFO.labels(service_id, service.knowledge.fingerprint).set(1)
