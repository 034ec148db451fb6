"""The loopback floor: a bare FastAPI app that reads a hook call's body, parses it with orjson and
answers `{"cards": []}`. Served by uvicorn exactly as the service is, it is what any FastAPI
service pays for HTTP, routing and JSON on this machine; bench/latency.py compares the service to it.
Benchmark-only: nothing in the service imports it."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request, Response

EMPTY = b'{"cards":[]}'

app = FastAPI()


@app.post("/cds-services/{service_id}")
async def hook(service_id: str, request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(EMPTY, media_type="application/json")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
