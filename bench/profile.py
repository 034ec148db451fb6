"""Where the time goes: pyinstrument samples of in-process calls, summarised by stage (JSON parsing,
request validation, concept matching, FHIR reading, cards, ...) and kept as text under bench/results/.

Each sample's time is charged to the innermost frame that belongs to a known stage, so e.g. pydantic
work done for fhir.resources counts as "FHIR resource validation", not as "pydantic"."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from pyinstrument import Profiler

# (stage, predicate on (file path, function name)); the first matching rule wins for a frame.
STAGES: list[tuple[str, Callable[[str, str], bool]]] = [
    # orjson is C code: its time shows in the Python frame calling it, a request's json().
    ("JSON parsing", lambda f, fn: "/json/" in f),
    ("JSON parsing", lambda f, fn: fn == "json" and f.endswith(("/requests.py", "/app.py"))),
    ("concept matching", lambda f, fn: f.endswith(("terminology.py", "knowledge.py"))),
    ("FHIR resource validation", lambda f, fn: "/fhir_core/" in f or "/fhir/resources/" in f),
    ("resource reading", lambda f, fn: f.endswith("cds_service/fhir/views.py")),
    (
        "facts",
        lambda f, fn: f.endswith(("cds_service/pipeline/facts.py", "cds_service/fhir/time.py")),
    ),
    ("draft orders", lambda f, fn: f.endswith("cds_service/pipeline/orders.py")),
    ("decision", lambda f, fn: f.endswith("cds_service/pipeline/decide.py")),
    ("cards and system actions", lambda f, fn: f.endswith("cds_service/pipeline/render.py")),
    ("pipeline glue", lambda f, fn: f.endswith(("cds_service/pipeline/evaluate.py", "resolve.py"))),
    ("logging", lambda f, fn: "/logging/" in f or f.endswith("cds_service/observability/logs.py")),
    ("response serialisation", lambda f, fn: fn in {"serialize_response", "render"}),
    ("request validation", lambda f, fn: fn in {"solve_dependencies", "request_body_to_args"}),
    ("route handler", lambda f, fn: f.endswith("cds_service/api/app.py")),
    ("httpx client and ASGI transport", lambda f, fn: "/httpx/" in f or "/httpcore/" in f),
    ("framework (Starlette/FastAPI)", lambda f, fn: "/starlette/" in f or "/fastapi/" in f),
    ("asyncio", lambda f, fn: "/asyncio/" in f),
]


def _stage(file_path: str, function: str) -> str | None:
    for name, rule in STAGES:
        if rule(file_path, function):
            return name
    return None


def stage_breakdown(root: Any) -> dict[str, float]:
    """Seconds per stage from a pyinstrument frame tree."""
    totals: dict[str, float] = defaultdict(float)

    def walk(frame: Any, inherited: str) -> None:
        stage = _stage(frame.file_path or "", frame.function or "") or inherited
        totals[stage] += frame.time - sum(child.time for child in frame.children)
        for child in frame.children:
            walk(child, stage)

    walk(root, "other")
    return dict(totals)


def format_breakdown(totals: dict[str, float], calls: int) -> str:
    whole = sum(totals.values()) or 1.0
    lines = [f"{'stage':36s} {'ms/call':>9s} {'share':>7s}"]
    for stage, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        lines.append(f"{stage:36s} {seconds / calls * 1000:9.3f} {seconds / whole:7.1%}")
    lines.append(f"{'total (sampled)':36s} {whole / calls * 1000:9.3f}")
    return "\n".join(lines)


async def profile_calls(
    call: Callable[[], Awaitable[Any]], calls: int, warmup: int = 20
) -> tuple[str, dict[str, float]]:
    """(report text, stage totals in seconds) for `calls` calls after a warm-up."""
    for _ in range(warmup):
        await call()
    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    for _ in range(calls):
        await call()
    profiler.stop()
    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    totals = stage_breakdown(root) if root is not None else {}
    tree = profiler.output_text(unicode=False, color=False, show_all=False)
    return format_breakdown(totals, calls) + "\n\n" + tree, totals
