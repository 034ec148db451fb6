"""Hook latency over loopback HTTP, next to the floor (issue 15): one uvicorn worker each for

- the **floor**: bench/floor_app.py, a bare FastAPI app that only parses the body;
- the **service, auth off** (`CDS_AUTH_REQUIRED=false`);
- the **service, rules off**: bench/rules_off_app.py, the same app answering from a memo of its first
  evaluation of each body: what a hook call costs besides the rules (reading, validating, middleware,
  audit queue, access log, metrics, serialising);
- the **service, auth on**: ES384 tokens verified against a JWKS served on loopback, a fresh `jti`
  per call checked by the in-memory replay cache, and, when Redis answers on 127.0.0.1:6379, the
  same with `CDS_REPLAY_CACHE=redis` (the shared cache a multi-replica deployment uses).

Calls are interleaved (floor, then each service, for every round) on one keep-alive connection per
server, with the same bytes, so a slow patch of the shared machine slows all of them alike. Tokens
are signed before the timed loop: signing is the EHR's cost, not the service's."""

from __future__ import annotations

import contextlib
import json
import socket
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from bench.inprocess import percentiles
from bench.loopback import HOST, server

HEADERS = {"content-type": "application/json", "accept": "application/json"}
ISSUER = "https://ehr.bench.invalid"


@contextlib.contextmanager
def _jwks_server(public: dict[str, Any]) -> Iterator[str]:
    body = json.dumps({"keys": [public]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer((HOST, 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{httpd.server_address[1]}/jwks.json"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _redis_up() -> bool:
    try:
        with socket.create_connection((HOST, 6379), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def measure(
    bodies: dict[str, bytes], service: str, calls: dict[str, int], warmup: int = 100
) -> list[dict[str, Any]]:
    """One row per (payload, server): p50/p95/p99 in ms and p50 over the floor's p50."""
    private = ec.generate_private_key(ec.SECP384R1())
    kid = "bench-es384"
    public = {**ECAlgorithm.to_jwk(private.public_key(), as_dict=True), "kid": kid, "alg": "ES384"}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cds-bench-lat-") as tmp, _jwks_server(public) as jwks:
        workdir = Path(tmp)
        auth = {
            "CDS_AUTH_REQUIRED": "true",
            "CDS_TRUSTED_ISSUERS": json.dumps({ISSUER: jwks}),
        }
        variants: dict[str, tuple[str, dict[str, str]]] = {
            "floor": ("bench.floor_app:app", {}),
            "service, auth off": ("cds_service.asgi:app", {}),
            "service, rules off": ("bench.rules_off_app:app", {}),
            "service, auth on (memory replay cache)": ("cds_service.asgi:app", auth),
        }
        if _redis_up():
            redis = {**auth, "CDS_REPLAY_CACHE": "redis", "CDS_REDIS_URL": f"redis://{HOST}:6379/0"}
            variants["service, auth on (Redis replay cache)"] = ("cds_service.asgi:app", redis)
        with contextlib.ExitStack() as stack:
            bases = {
                label: stack.enter_context(server(1, workdir, app=app, env=env, name=f"lat{index}"))
                for index, (label, (app, env)) in enumerate(variants.items())
            }
            clients = {
                label: stack.enter_context(httpx.Client(base_url=base, timeout=30.0))
                for label, base in bases.items()
            }
            path = f"/cds-services/{service}"
            for name, body in bodies.items():
                n = calls[name]
                tokens = {
                    label: [
                        _token(private, kid, f"{bases[label]}{path}") for _ in range(n + warmup)
                    ]
                    for label, (_, env) in variants.items()
                    if env.get("CDS_AUTH_REQUIRED") == "true"
                }
                samples: dict[str, list[float]] = {label: [] for label in variants}
                errors = dict.fromkeys(variants, 0)
                for i in range(n + warmup):
                    for label, client in clients.items():
                        headers = dict(HEADERS)
                        if label in tokens:
                            headers["authorization"] = f"Bearer {tokens[label][i]}"
                        started = time.perf_counter()
                        response = client.post(path, content=body, headers=headers)
                        elapsed = (time.perf_counter() - started) * 1000
                        if response.status_code != 200:
                            errors[label] += 1
                        elif i >= warmup:
                            samples[label].append(elapsed)
                floor = statistics.median(samples["floor"])
                for label, values in samples.items():
                    p50 = statistics.median(values) if values else float("nan")
                    tail = percentiles(values) if values else {}
                    rows.append(
                        {
                            "payload": name,
                            "server": label,
                            "bytes": len(body),
                            "calls": len(values),
                            "errors": errors[label],
                            "p50_ms": round(p50, 3),
                            "p95_ms": round(tail["p95_ms"], 3) if tail else None,
                            "p99_ms": round(tail["p99_ms"], 3) if tail else None,
                            "over_floor": round(p50 / floor, 2),
                        }
                    )
    return rows


def _token(private: ec.EllipticCurvePrivateKey, kid: str, audience: str) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": audience,
        "iat": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, private, algorithm="ES384", headers={"kid": kid, "typ": "JWT"})
