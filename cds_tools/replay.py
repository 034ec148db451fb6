"""Replaying scenario fixtures and comparing what the service says with what each fixture expects.

This is the one comparison in the project: `cds-service replay --expect` (the harness integrators
run in their CI, in-process or against a running service), `cds-service evaluate --pretty` and the
fixture tests all read a response through `observed_outcome` and judge it with `compare`."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from cds_service.config import Settings
from cds_service.golive.traffic import REPLAY, TRAFFIC_HEADER
from cds_service.pipeline.pama import PAMA_EXTENSION
from cds_service.text_table import text_table
from cds_service.wire import CardExtension
from cds_tools.fixtures import FixtureError, load_fixture, read_json, render

RATING_ABBREVIATIONS = {
    "usually-appropriate": "UA",
    "may-be-appropriate": "MBA",
    "usually-not-appropriate": "UNA",
    "not-rated": "NR",
}
# The server's clock and the replay's differ by the time a request takes: a tenth of an hour is the
# precision the service reports hours in.
HOURS_TOLERANCE = 0.1


def observed_outcome(response: dict[str, Any]) -> dict[str, Any]:
    """A CDS Hooks response reduced to what a fixture's `expected` states, in the same shape."""
    cards = []
    for card in response.get("cards", []):
        extension = card.get("extension", {})
        summary: dict[str, Any] = {
            "scenario": card.get("source", {}).get("topic", {}).get("code"),
            "rating": extension.get(CardExtension.RATING),
            "indicator": card.get("indicator"),
            "draftOrder": extension.get(CardExtension.DRAFT_ORDER),
            "suggestions": [
                [action.get("type") for action in suggestion.get("actions", [])]
                for suggestion in card.get("suggestions", [])
            ],
        }
        if CardExtension.HOURS_SINCE_PUNCTURE in extension:
            summary["hoursSincePuncture"] = extension[CardExtension.HOURS_SINCE_PUNCTURE]
        cards.append(summary)
    actions = [
        {
            "draftOrder": f"{action['resource'].get('resourceType')}/{action['resource'].get('id')}",
            "pamaRating": pama_rating(action["resource"]),
        }
        for action in response.get("systemActions", [])
        if isinstance(action.get("resource"), dict)
    ]
    return {"cards": cards, "systemActions": actions}


def pama_rating(resource: dict[str, Any]) -> str | None:
    """The Argonaut PAMA rating code recorded on an order (the first coding, as the sandbox reads)."""
    for extension in resource.get("extension", []):
        if extension.get("url") == PAMA_EXTENSION:
            codings = extension.get("valueCodeableConcept", {}).get("coding", [])
            return str(codings[0]["code"]) if codings else None
    return None


def compare(expected: dict[str, Any], observed: dict[str, Any]) -> list[str]:
    """What differs between a fixture's expected outcome and the observed one, in words; empty when
    they agree. `hoursSincePuncture` is compared only where the fixture states it."""
    problems: list[str] = []
    exp_cards, obs_cards = expected.get("cards", []), observed.get("cards", [])
    if len(exp_cards) != len(obs_cards):
        problems.append(f"expected {len(exp_cards)} card(s), got {len(obs_cards)}")
    for number, (exp, obs) in enumerate(zip(exp_cards, obs_cards, strict=False), start=1):
        for key in ("scenario", "rating", "indicator", "draftOrder", "suggestions"):
            if exp.get(key) != obs.get(key):
                problems.append(
                    f"card {number} {key}: expected {_show(exp.get(key))}, got {_show(obs.get(key))}"
                )
        if "hoursSincePuncture" in exp:
            hours = obs.get("hoursSincePuncture")
            if hours is None or abs(float(hours) - float(exp["hoursSincePuncture"])) > (
                HOURS_TOLERANCE
            ):
                problems.append(
                    f"card {number} hoursSincePuncture: expected {exp['hoursSincePuncture']}, "
                    f"got {_show(hours)}"
                )
    exp_actions = expected.get("systemActions", [])
    obs_actions = observed.get("systemActions", [])
    if exp_actions != obs_actions:
        problems.append(
            f"systemActions: expected {_show_actions(exp_actions)}, got {_show_actions(obs_actions)}"
        )
    return problems


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join("+".join(v) if isinstance(v, list) else str(v) for v in value) + "]"
    return "none" if value is None else str(value)


def _show_actions(actions: list[dict[str, Any]]) -> str:
    return _show([f"{a.get('draftOrder')} {a.get('pamaRating')}" for a in actions])


@dataclass
class FixtureResult:
    name: str
    title: str
    service: str
    expected: dict[str, Any]
    observed: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.observed is not None and not self.problems


async def replay_fixture(client: httpx.AsyncClient, fixture: dict[str, Any]) -> FixtureResult:
    """POST one rendered fixture's request to its service and judge the answer."""
    result = FixtureResult(
        name=fixture["name"],
        title=fixture.get("title", ""),
        service=fixture["service"],
        expected=fixture["expected"],
    )
    try:
        response = await client.post(
            f"/cds-services/{fixture['service']}",
            json=fixture["request"],
            headers={TRAFFIC_HEADER: REPLAY},  # kept out of the service's analytics and reports
        )
    except httpx.HTTPError as exc:
        result.problems.append(f"request failed: {type(exc).__name__}: {exc}")
        return result
    if response.status_code != 200:
        result.problems.append(f"HTTP {response.status_code}: {response.text[:300]}")
        return result
    result.response = response.json()
    result.observed = observed_outcome(result.response)
    result.problems = compare(result.expected, result.observed)
    return result


async def replay(
    client: httpx.AsyncClient, paths: Sequence[Path], now: datetime
) -> list[FixtureResult]:
    return [await replay_fixture(client, load_fixture(path, now)) for path in paths]


def load_case(path: Path, now: datetime, service_for_hook: Mapping[str, str]) -> dict[str, Any]:
    """A fixture, or a plain CDS Hooks request as an EHR sent it (an integrator's export), in the
    fixture's shape: a request goes to the service answering its hook and expects nothing (what
    `knowledge diff` compares is the outcome under two knowledge sets). Time tokens are rendered in
    both. A FixtureError names the file when it is neither."""
    payload = read_json(path)
    if isinstance(payload, dict) and "request" in payload:
        return load_fixture(path, now)
    if not (
        isinstance(payload, dict)
        and isinstance(payload.get("hook"), str)
        and isinstance(payload.get("context"), dict)
    ):
        raise FixtureError(
            f"{path}: neither a fixture (request, service, expected) nor a CDS Hooks request "
            "(hook, context)"
        )
    service = service_for_hook.get(payload["hook"])
    if service is None:
        raise FixtureError(
            f"{path}: no service answers the hook {payload['hook']!r}; the hooks are: "
            f"{', '.join(service_for_hook)}"
        )
    return {
        "name": path.stem,
        "title": "",
        "service": service,
        "expected": {},
        "request": render(payload, now),
    }


class ServiceUnreachable(Exception):
    """The service at --url cannot be replayed against at all: said once, not once per fixture."""


async def check_reachable(client: httpx.AsyncClient) -> list[str]:
    """Ask the running service's discovery document before replaying anything; its service ids,
    or ServiceUnreachable saying in one line why no fixture could be replayed there."""
    url = f"{client.base_url}".rstrip("/") + "/cds-services"
    try:
        response = await client.get("/cds-services")
    except httpx.TimeoutException:
        raise ServiceUnreachable(f"cannot reach the service at {url}: no answer in time") from None
    except httpx.ConnectError:
        raise ServiceUnreachable(
            f"cannot reach the service at {url}: the connection failed"
            " (is it running? `make run` starts it)"
        ) from None
    except httpx.HTTPError as exc:
        raise ServiceUnreachable(
            f"cannot reach the service at {url}: {type(exc).__name__}: {exc}"
        ) from None
    if response.status_code in (401, 403):
        raise ServiceUnreachable(
            f"{url} answered {response.status_code}: it requires a signed CDS Hooks JWT, which"
            " replay cannot make; replay against a test instance with auth off"
        )
    try:
        services = response.json()["services"] if response.status_code == 200 else None
        ids = [str(s["id"]) for s in services] if isinstance(services, list) else None
    except (ValueError, KeyError, TypeError):
        ids = None
    if ids is None:
        raise ServiceUnreachable(
            f"{url} answered HTTP {response.status_code} without a discovery document: is this"
            " the CDS service's URL?"
        )
    return ids


@asynccontextmanager
async def in_process_client(settings: Settings, now: datetime) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the app itself (no network), on a throw-away feedback store, evaluating as of
    `now`: the fixtures' times are rendered against the same instant."""
    from cds_service.api.app import create_app  # importing the app module builds the default app

    with tempfile.TemporaryDirectory(prefix="cds-replay-") as folder:
        overrides: dict[str, Any] = {
            "database_url": f"sqlite:///{Path(folder) / 'replay.sqlite3'}",
            "log_level": "ERROR",  # no banner: this app is reachable only through the client
        }
        if "auth_required" in type(settings).model_fields:
            # This app is reachable only through the client below, never over a network: there is
            # no EHR whose JWT to check.
            overrides["auth_required"] = False
        app = create_app(settings.model_copy(update=overrides), clock=lambda: now)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://replay") as client:
                yield client


def service_base_url(url: str) -> str:
    """The service root from what a user may paste: the root or its discovery URL."""
    return url.rstrip("/").removesuffix("/cds-services")


def card_line(card: dict[str, Any]) -> str:
    rating = RATING_ABBREVIATIONS.get(str(card.get("rating")), str(card.get("rating")))
    suggestions = _show(card.get("suggestions", []))
    return f"{card.get('scenario')} {card.get('indicator')} {rating} {suggestions}"


def outcome_cells(outcome: dict[str, Any]) -> tuple[str, str]:
    cards = "; ".join(card_line(c) for c in outcome.get("cards", [])) or "no card"
    actions = ", ".join(str(a.get("pamaRating")) for a in outcome.get("systemActions", []))
    return cards, actions or "-"


def outcome_line(result: FixtureResult) -> str:
    """One fixture's observed outcome in one line (cards; PAMA ratings), for comparing two runs."""
    if result.observed is None:
        return "error"
    cards, actions = outcome_cells(result.observed)
    return f"{cards} | PAMA {actions}"


def results_table(results: Sequence[FixtureResult]) -> str:
    """The pass/fail table `cds-service replay` prints, with what was wrong under it."""
    rows = []
    for r in results:
        cards, actions = outcome_cells(r.observed) if r.observed is not None else ("error", "-")
        rows.append(["PASS" if r.passed else "FAIL", r.name, cards, actions])
    lines = [text_table(["result", "fixture", "cards (observed)", "PAMA rating"], rows)]
    failures = [r for r in results if not r.passed]
    for r in failures:
        lines.append("")
        lines.append(f"{r.name} ({r.title}):")
        lines += [f"  - {problem}" for problem in r.problems]
    passed = len(results) - len(failures)
    lines += [
        "",
        "Ratings (ACR Appropriateness Criteria): UA usually appropriate, MBA may be appropriate,",
        "UNA usually not appropriate, NR not rated (the ACR gives no rating for that study there).",
        "",
        f"{len(results)} fixtures: {passed} as expected, {len(failures)} not",
    ]
    return "\n".join(lines)


def response_table(response: dict[str, Any]) -> str:
    """A readable view of one CDS Hooks response for `cds-service evaluate --pretty`."""
    cards = response.get("cards", [])
    observed = observed_outcome(response)
    lines = [f"Cards: {len(cards)}"]
    if cards:
        rows = []
        for number, (card, seen) in enumerate(zip(cards, observed["cards"], strict=True), start=1):
            hours = seen.get("hoursSincePuncture")
            rows.append(
                [
                    str(number),
                    str(seen["indicator"]),
                    str(seen["scenario"]),
                    str(seen["rating"]),
                    "-" if hours is None else f"{hours:g}",
                    str(seen["draftOrder"]),
                    "; ".join(s["label"] for s in card.get("suggestions", [])) or "-",
                ]
            )
        lines.append(
            text_table(
                ["#", "indicator", "scenario", "rating", "hours", "draft order", "suggestions"],
                rows,
            )
        )
        lines.append("")
        lines += [f"{n}. {card['summary']}" for n, card in enumerate(cards, start=1)]
    actions = observed["systemActions"]
    lines.append("")
    lines.append(f"System actions: {len(actions)}")
    lines += [f"  update {a['draftOrder']}: PAMA rating {a['pamaRating']}" for a in actions]
    return "\n".join(lines)
