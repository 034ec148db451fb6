"""The benchmark: `make bench` (or `python -m bench.run`). See bench/README.md for how to read it.

1. In-process latency through the ASGI app (httpx ASGI transport) for the seed requests and a large
   patient, next to the framework floor, the bare floor and the JSON floor of the same bytes.
2. Latency over loopback HTTP next to a bare FastAPI floor, auth off and on, rules off (bench/latency.py).
3. Throughput of uvicorn with 2 workers over loopback at several concurrency levels.
4. Scaling: latency as the prefetch grows.
5. Profiles (pyinstrument) of the typical and the large request, summarised by stage.

Results go to bench/results/ (Markdown and JSON) and, with --update-readme, into README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import logging
import os
import platform
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import inprocess, latency, loopback, payloads
from bench.profile import profile_calls

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
README_START = "<!-- bench-results:start -->"
README_END = "<!-- bench-results:end -->"
SERVICE = "pdph-imaging-order-select"
TARGETS = {
    "typical_over_framework": 1.3,
    "large_over_json": 3.0,
    "loopback_typical_over_floor": 1.5,  # SPEC §7
    "loopback_large_over_floor": 1.6,  # SPEC §7
    "rps": 1000.0,
    "p99_ms": 50.0,
}


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {
        name: importlib.metadata.version(name)
        for name in ("fastapi", "starlette", "pydantic", "pydantic-core", "orjson", "uvicorn")
    }
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "packages": versions,
    }


def _round(stats: dict[str, float]) -> dict[str, float]:
    return {k: (v if k == "n" else round(v, 4)) for k, v in stats.items()}


async def _in_process(
    now: datetime, bodies: dict[str, bytes], calls: int, large_calls: int, warmup: int
) -> dict[str, Any]:
    paths = inprocess.service_paths(SERVICE)
    out: dict[str, Any] = {}
    async with inprocess.InProcess(now) as ip:
        for name, body in bodies.items():
            n = large_calls if name == "large" else calls
            row: dict[str, Any] = {"bytes": len(body), "resources": None}
            measured = await ip.interleaved(paths, body, n, warmup)
            row.update({kind: _round(stats) for kind, stats in measured.items()})
            out[name] = row
    return out


async def _scaling(
    now: datetime, sizes: list[int], warmup: int, max_calls: int
) -> list[dict[str, Any]]:
    paths = inprocess.service_paths(SERVICE)
    rows = []
    async with inprocess.InProcess(now) as ip:
        for size in sizes:
            request = payloads.scaled_request(now, size)
            body = payloads.encode(request)
            calls = min(max_calls, 2000 if size <= 100 else 500 if size <= 1000 else 200)
            routes = {"app": paths["app"], "floor": paths["floor"]}
            measured = await ip.interleaved(routes, body, calls, min(warmup, calls))
            rows.append(
                {
                    "resources": payloads.resource_count(request),
                    "bytes": len(body),
                    "calls": calls,
                    **{kind: _round(stats) for kind, stats in measured.items()},
                }
            )
    return rows


async def _profiles(now: datetime, bodies: dict[str, bytes], calls: int) -> dict[str, Any]:
    paths = inprocess.service_paths(SERVICE)
    out: dict[str, Any] = {}
    async with inprocess.InProcess(now) as ip:
        for name, body in bodies.items():
            n = max(10, calls // 20) if name == "large" else calls

            async def call(path: str = paths["app"], body: bytes = body) -> None:
                await ip.post(path, body)

            text, totals = await profile_calls(call, n)
            out[name] = {"calls": n, "text": text, "ms_per_call": {}}
            out[name]["ms_per_call"] = {k: round(v / n * 1000, 4) for k, v in totals.items()}
    return out


def _ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else float("inf")


def _markdown(result: dict[str, Any]) -> str:
    lines: list[str] = []
    m = result["machine"]
    lines.append(
        f"Run {result['started']} on {m['cpu']} ({m['cores']} cores), Python {m['python']}, "
        f"FastAPI {m['packages']['fastapi']}, pydantic {m['packages']['pydantic']}, "
        f"orjson {m['packages']['orjson']}. Label: `{result['label']}`. 1-minute load average "
        f"at start {result.get('load_start', '?')}, at end {result.get('load_end', '?')} "
        "(2 cores: above 2 means other work was competing for them)."
    )
    if result.get("in_process"):
        lines += ["", "**1. In-process latency** (ms; httpx ASGI transport; after warm-up)", ""]
        lines.append(
            "| request | bytes | calls | app p50 | app p95 | app p99 | framework floor p50 | "
            "bare floor p50 | JSON floor p50 | app/framework | app/JSON |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, row in result["in_process"].items():
            app, floor, bare, js = row["app"], row["floor"], row["bare"], row["json"]
            lines.append(
                f"| {name} | {row['bytes']:,} | {app['n']:,} | {app['p50_ms']:.3f} | "
                f"{app['p95_ms']:.3f} | {app['p99_ms']:.3f} | {floor['p50_ms']:.3f} | "
                f"{bare['p50_ms']:.3f} | {js['p50_ms']:.3f} | "
                f"{_ratio(app['p50_ms'], floor['p50_ms']):.2f} | "
                f"{_ratio(app['p50_ms'], js['p50_ms']):.2f} |"
            )
        r = result["ratios"]
        lines += [
            "",
            f"- (a)/(c), typical over framework floor (p50): seed-acute **{r['seed-acute/c']}**, "
            f"seed-persistent **{r['seed-persistent/c']}** (target ≤ {TARGETS['typical_over_framework']})",
            f"- (b)/(d), large patient over JSON floor (p50): **{r['large/d']}** "
            f"(target ≤ {TARGETS['large_over_json']})",
        ]
    if result.get("latency"):
        lines += [
            "",
            "**2. Latency over loopback** (ms; one uvicorn worker per server, one keep-alive "
            "connection each, calls interleaved; the floor is a bare FastAPI app that only parses "
            "the body)",
            "",
            "| request | server | calls | errors | p50 | p95 | p99 | p50 over floor |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for row in result["latency"]:
            lines.append(
                f"| {row['payload']} | {row['server']} | {row['calls']:,} | {row['errors']} | "
                f"{row['p50_ms']:.3f} | {row['p95_ms']:.3f} | {row['p99_ms']:.3f} | "
                f"{row['over_floor']:.2f} |"
            )
        lines += [
            "",
            f"- targets: typical ≤ {TARGETS['loopback_typical_over_floor']} × floor, large "
            f"patient ≤ {TARGETS['loopback_large_over_floor']} × floor (auth off)",
            "- *rules off*: the same app answering from a memo of its first evaluation "
            "(bench/rules_off_app.py), i.e. what a call costs besides the rules",
        ]
    if result.get("throughput"):
        lines += [
            "",
            "**3. Throughput over loopback** (uvicorn, 2 workers, 127.0.0.1; the load generator "
            "shares the 2 cores with the workers)",
            "",
            "| payload | generator | concurrency | rounds | requests | req/s (median) | "
            "req/s (min–max) | p50 ms | p99 ms | errors | load avg |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        for row in result["throughput"]:
            if "server_log_tail" not in row:
                key = (row["payload"], row["generator"], row["concurrency"])
                groups.setdefault(key, []).append(row)
        for (payload, generator, level), rows in groups.items():
            done = sorted((r for r in rows if "failed" not in r), key=lambda r: r["rps"])
            failed = len(rows) - len(done)
            if not done:
                lines.append(f"| {payload} | {generator} | {level} | failed | | | | | | | |")
                continue
            mid = done[len(done) // 2]  # the median round (by req/s) gives the latencies
            lines.append(
                f"| {payload} | {generator} | {level} | {len(rows)} | "
                f"{sum(r['requests'] for r in done):,} | {mid['rps']:,.0f} | "
                f"{done[0]['rps']:,.0f}–{done[-1]['rps']:,.0f} | {mid['p50_ms']:.2f} | "
                f"{mid['p99_ms']:.2f} | {sum(r['errors'] for r in done)}"
                f"{f' ({failed} failed runs)' if failed else ''} | {mid.get('load', '')} |"
            )
    if result.get("scaling"):
        lines += [
            "",
            "**4. Scaling** (in-process, ms)",
            "",
            "| resources | bytes | calls | app p50 | app p95 | framework floor p50 | JSON p50 | "
            "app/JSON | app µs/resource |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in result["scaling"]:
            app = row["app"]
            lines.append(
                f"| {row['resources']:,} | {row['bytes']:,} | {row['calls']} | "
                f"{app['p50_ms']:.3f} | {app['p95_ms']:.3f} | {row['floor']['p50_ms']:.3f} | "
                f"{row['json']['p50_ms']:.3f} | "
                f"{_ratio(app['p50_ms'], row['json']['p50_ms']):.2f} | "
                f"{app['p50_ms'] * 1000 / row['resources']:.1f} |"
            )
    if result.get("profiles"):
        lines += ["", "**5. Where the time goes** (pyinstrument, ms per call by stage)", ""]
        names = list(result["profiles"])
        stages = sorted(
            {s for p in result["profiles"].values() for s in p["ms_per_call"]},
            key=lambda s: -max(p["ms_per_call"].get(s, 0) for p in result["profiles"].values()),
        )
        lines.append("| stage | " + " | ".join(names) + " |")
        lines.append("|---|" + "---:|" * len(names))
        for stage in stages:
            cells = [f"{result['profiles'][n]['ms_per_call'].get(stage, 0):.3f}" for n in names]
            lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _update_readme(markdown: str) -> None:
    text = README.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        return
    block = f"{README_START}\n{markdown}{README_END}"
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.DOTALL)
    README.write_text(pattern.sub(lambda _: block, text), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="in-process calls per request")
    parser.add_argument("--large-calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--levels", default="1,4,8,16,64", help="loopback concurrency levels")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each load run")
    parser.add_argument("--max-requests", type=int, default=20_000, help="cap per load run")
    parser.add_argument("--rounds", type=int, default=3, help="loopback rounds over all levels")
    parser.add_argument("--sizes", default="10,100,1000,5000", help="scaling prefetch sizes")
    parser.add_argument("--scaling-calls", type=int, default=2000, help="cap per scaling size")
    parser.add_argument("--skip-inprocess", action="store_true")
    parser.add_argument("--skip-loopback", action="store_true", help="no loopback part at all")
    parser.add_argument("--latency-calls", type=int, default=1000, help="loopback calls per seed")
    parser.add_argument("--latency-large-calls", type=int, default=100)
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--skip-profile", action="store_true")
    parser.add_argument("--profile-calls", type=int, default=400)
    parser.add_argument("--label", default="latest", help="results file name (bench/results/)")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args()
    # The benchmark's own HTTP clients would log every request through the app's JSON logging.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    started = time.perf_counter()
    now = payloads.bench_now()
    requests = {name: payloads.seed_request(name, now) for name in payloads.SEED_FIXTURES}
    requests["large"] = payloads.large_patient_request(now)
    bodies = {name: payloads.encode(r) for name, r in requests.items()}

    result: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "label": args.label,
        "machine": _machine(),
        "settings": vars(args),
        "targets": TARGETS,
        "load_start": round(os.getloadavg()[0], 2),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        """Written after every part, so an interrupted run still leaves what it measured."""
        (RESULTS / f"{args.label}.json").write_text(json.dumps(result, indent=2) + "\n")

    if not args.skip_inprocess:
        print("in-process latency ...", flush=True)
        result["in_process"] = asyncio.run(
            _in_process(now, bodies, args.calls, args.large_calls, args.warmup)
        )
        for name, request in requests.items():
            result["in_process"][name]["resources"] = payloads.resource_count(request)
        ip = result["in_process"]
        result["ratios"] = {
            f"{name}/c": _ratio(ip[name]["app"]["p50_ms"], ip[name]["floor"]["p50_ms"])
            for name in payloads.SEED_FIXTURES
        }
        result["ratios"]["large/d"] = _ratio(
            ip["large"]["app"]["p50_ms"], ip["large"]["json"]["p50_ms"]
        )
        print(json.dumps(result["ratios"]), flush=True)
        save()

    if not args.skip_scaling:
        print("scaling ...", flush=True)
        sizes = [int(s) for s in args.sizes.split(",")]
        result["scaling"] = asyncio.run(_scaling(now, sizes, args.warmup, args.scaling_calls))
        save()
    if not args.skip_loopback:
        print("loopback latency ...", flush=True)
        calls = {name: args.latency_calls for name in payloads.SEED_FIXTURES}
        calls["large"] = args.latency_large_calls
        result["latency"] = latency.measure(bodies, SERVICE, calls)
        save()
        print("loopback throughput ...", flush=True)
        levels = [int(s) for s in args.levels.split(",")]
        loop_bodies = {"seed-persistent": bodies["seed-persistent"]}
        result["throughput"] = loopback.throughput(
            loop_bodies, SERVICE, levels, args.seconds, args.max_requests, rounds=args.rounds
        )
        save()
    if not args.skip_profile:
        print("profiles ...", flush=True)
        profiles = asyncio.run(
            _profiles(
                now,
                {"seed-acute": bodies["seed-acute"], "large": bodies["large"]},
                args.profile_calls,
            )
        )
        texts = [f"# {name}: {p['calls']} calls\n\n{p['text']}" for name, p in profiles.items()]
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"profile-{args.label}.txt").write_text("\n\n".join(texts), encoding="utf-8")
        result["profiles"] = {
            n: {"calls": p["calls"], "ms_per_call": p["ms_per_call"]} for n, p in profiles.items()
        }

    result["seconds"] = round(time.perf_counter() - started, 1)
    result["load_end"] = round(os.getloadavg()[0], 2)
    markdown = _markdown(result)
    save()
    (RESULTS / f"{args.label}.md").write_text(markdown, encoding="utf-8")
    if args.update_readme:
        _update_readme(markdown)
    print(markdown)
    print(f"done in {result['seconds']} s; results in {RESULTS}")


if __name__ == "__main__":
    main()
