"""A bounded asyncio load generator (httpx, HTTP/1.1 keep-alive), run in its own process:

    python -m bench.loadgen URL BODY_FILE --concurrency 16 --requests 20000 --seconds 8

`concurrency` clients post the same body in a loop until `requests` were sent or `seconds` passed,
whichever comes first, then it prints one JSON line: requests, seconds, rps, latency percentiles (ms),
errors (non-200 answers and transport failures). Only loopback URLs are accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

LOOPBACK = ("127.", "localhost", "[::1]", "::1")


def _pick(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


async def drive(url: str, body: bytes, concurrency: int, requests: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + seconds
    headers = {"content-type": "application/json"}
    # One client (one keep-alive connection) per worker: a single shared pool gets slower as the
    # number of waiting tasks grows, which would measure httpx rather than the service.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def worker() -> None:
        nonlocal sent, errors
        async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
            while sent < requests and time.perf_counter() < deadline:
                sent += 1
                started = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers=headers)
                    if response.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "generator": "httpx",
        "concurrency": concurrency,
        "requests": len(ordered),
        "seconds": round(elapsed, 3),
        "rps": round(len(ordered) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(_pick(ordered, 0.50), 3),
        "p99_ms": round(_pick(ordered, 0.99), 3),
        "max_ms": round(ordered[-1], 3) if ordered else 0.0,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("body", type=Path)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    host = urlsplit(args.url).hostname or ""
    if not host.startswith(LOOPBACK):
        raise SystemExit(f"refusing a non-loopback target: {host!r}")
    result = asyncio.run(
        drive(args.url, args.body.read_bytes(), args.concurrency, args.requests, args.seconds)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
