"""Throughput over loopback: the production app under uvicorn (2 workers, 127.0.0.1, auth off),
driven at several concurrency levels by wrk when it is installed and by the httpx load generator
(bench/loadgen.py, its own process) in every case. Every run is bounded in time (and the httpx one in
count too); the server is stopped at the end whatever happens."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

HOST = "127.0.0.1"
WRK_POST = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("{body}", "rb"))
wrk.body = f:read("*a")
f:close()
"""
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,'
    .. '"status_errors":%d,"socket_errors":%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
"""
WRK_SCRIPT = WRK_POST + WRK_DONE


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(
    workers: int,
    workdir: Path,
    app: str = "cds_service.asgi:app",
    env: dict[str, str] | None = None,
    name: str = "server",
) -> Iterator[str]:
    """uvicorn serving `app` (by default the service, auth off, a temporary SQLite; `env` adds or
    overrides variables); yields its base URL. Its output goes to `workdir/<name>.log`."""
    port = _free_port()
    environment = dict(os.environ)
    environment.update(
        {
            "DATABASE_URL": f"sqlite:///{workdir / f'{name}-feedback.sqlite3'}",
            "CDS_AUTH_REQUIRED": "false",
            **(env or {}),
        }
    )
    log = (workdir / f"{name}.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
    ]
    process = subprocess.Popen(
        command, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited early, see {workdir / f'{name}.log'}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not become healthy within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


def _load_average() -> float:
    """The 1-minute load average: the machine may be shared with other work (tests of other
    checkouts, their servers and databases), which the results should show."""
    return round(os.getloadavg()[0], 2)


def _loadgen(
    url: str, body: Path, concurrency: int, requests: int, seconds: float
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.loadgen",
        url,
        str(body),
        "--concurrency",
        str(concurrency),
        "--requests",
        str(requests),
        "--seconds",
        str(seconds),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _wrk(url: str, script: Path, concurrency: int, seconds: float) -> dict[str, Any]:
    command = [
        "wrk",
        "-t",
        "1",
        "-c",
        str(concurrency),
        "-d",
        f"{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    for _attempt in range(2):  # wrk now and then fails to start its connections: retry once
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
        lines = [x for x in done.stdout.splitlines() if x.startswith("BENCH-JSON ")]
        if done.returncode == 0 and lines:
            break
    else:
        return {
            "generator": "wrk",
            "concurrency": concurrency,
            "failed": (done.stderr or done.stdout).strip()[-300:],
        }
    line = lines[0]
    raw = json.loads(line.removeprefix("BENCH-JSON "))
    elapsed = raw["duration_us"] / 1e6
    return {
        "generator": "wrk",
        "concurrency": concurrency,
        "requests": raw["requests"],
        "seconds": round(elapsed, 3),
        "rps": round(raw["requests"] / elapsed, 1) if elapsed else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": raw["status_errors"] + raw["socket_errors"],
    }


def throughput(
    bodies: dict[str, bytes],
    service: str,
    levels: list[int],
    seconds: float,
    max_requests: int,
    workers: int = 2,
    rounds: int = 1,
) -> list[dict[str, Any]]:
    """One row per (payload, generator, concurrency, round). Rounds go through every level in turn,
    so a slow patch of the shared machine lowers one round of each level, not every round of one."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cds-bench-loop-") as tmp:
        workdir = Path(tmp)
        with server(workers, workdir) as base:
            url = f"{base}/cds-services/{service}"
            for name, body in bodies.items():
                body_file = workdir / f"{name}.json"
                body_file.write_bytes(body)
                # Warm-up: every worker answers the payload a few times before anything is measured.
                _loadgen(url, body_file, 4, 400, 20)
                script = workdir / f"{name}.lua"
                script.write_text(WRK_SCRIPT.format(body=body_file))
                health_script = workdir / "healthz.lua"
                health_script.write_text(WRK_DONE.format())
                for round_ in range(1, rounds + 1):
                    if shutil.which("wrk"):
                        for level in levels:
                            load = _load_average()
                            result = _wrk(url, script, level, seconds)
                            rows.append({"payload": name, "round": round_, "load": load, **result})
                            # Calibration: the same server answering GET /healthz (no body, no
                            # evaluation) at the same level, right after: the ceiling of
                            # uvicorn + FastAPI + loopback on this machine at this moment.
                            load = _load_average()
                            result = _wrk(f"{base}/healthz", health_script, level, seconds)
                            row = {"payload": "GET /healthz", "round": round_, "load": load}
                            rows.append({**row, **result})
                    for level in levels:
                        load = _load_average()
                        result = _loadgen(url, body_file, level, max_requests, seconds)
                        rows.append({"payload": name, "round": round_, "load": load, **result})
        if any(row.get("errors") or "failed" in row for row in rows):
            # Keep what the server said: the temporary folder goes away with the run.
            tail = (workdir / "server.log").read_text(errors="replace")[-3000:]
            rows.append({"server_log_tail": tail})
    return rows
