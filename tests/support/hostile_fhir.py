"""A misbehaving FHIR server on 127.0.0.1 for the hostile tier (tests/test_hostile_fhir.py), run as its
own process (`python tests/support/hostile_fhir.py`; it prints `PORT <n>` once it listens) so that
its work never runs in the test's own interpreter, where it would skew the timings.

The first path segment picks the behaviour of the Observation search (or, for a mode ending in
`-optional`, of the DiagnosticReport search, an optional prefetch key; or of `/<mode>/jwks`); every
other query gets a small healthy answer. Big bodies are generated while they are sent: the server
never holds them.

    big-cl        300 MB with Content-Length (one Observation with a 300 MB note)
    big-chunked   the same body, chunked, no Content-Length
    bomb          a gzip stream inflating to about 500 MB (a few hundred kilobytes on the wire)
    trickle       a valid start, then one byte every 50 ms, forever
    loop          a Bundle whose next link is itself
    pages         pages of 2,500 Observations, each with a next link to the following page, forever
    deep          an Observation nested 200,000 arrays deep
    html200       an HTML sign-in page with status 200 and Content-Type text/html
    wrong-type    300 MB announced as application/fhir+xml
    huge-record   a real but huge record: 18,000 Observations in one Bundle (about 6 MB)
"""

from __future__ import annotations

import asyncio
import json
import sys
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

MB = 1024 * 1024
PATIENT_ID = "pat-ZQ7781"
SUBJECT = {"reference": f"Patient/{PATIENT_ID}"}
HUGE_NOTE_START = (
    b'{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":'
    b'"Observation","status":"final","code":{"text":"note"},"note":[{"text":"'
)
HUGE_NOTE_END = b'"}]}}]}'
PAGE_SIZE = 2500
RECORD_SIZE = 18_000


def _iso(hours_ago: float) -> str:
    moment = datetime.now(UTC) - timedelta(hours=hours_ago)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _bundle(resources: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next_url is not None:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def _observation(i: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"hr-{i}",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Pulse"},
        "subject": SUBJECT,
        "effectiveDateTime": _iso(24 * 30 + i % 500),
        "valueQuantity": {"value": 60 + i % 40, "unit": "/min", "code": "/min"},
    }


def healthy(resource_type: str) -> dict[str, Any]:
    """A lumbar puncture 30 h ago and a post-dural-puncture headache: a call that gets a card."""
    if resource_type == "Patient":
        return {"resourceType": "Patient", "id": PATIENT_ID, "birthDate": "1990-03-04"}
    if resource_type == "Procedure":
        return _bundle(
            [
                {
                    "resourceType": "Procedure",
                    "id": "lp-1",
                    "status": "completed",
                    "subject": SUBJECT,
                    "code": {
                        "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62270"}],
                        "text": "Lumbar puncture",
                    },
                    "performedDateTime": _iso(30),
                }
            ]
        )
    if resource_type == "Condition":
        return _bundle(
            [
                {
                    "resourceType": "Condition",
                    "id": "cond-1",
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "subject": SUBJECT,
                    "code": {
                        "coding": [
                            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G97.1"}
                        ],
                        "text": "Post-dural puncture headache",
                    },
                    "onsetDateTime": _iso(20),
                }
            ]
        )
    return _bundle([])


class Connection:
    def __init__(self, writer: asyncio.StreamWriter, port: int) -> None:
        self.writer = writer
        self.port = port

    async def head(self, status: int, content_type: str, headers: dict[str, str]) -> None:
        lines = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}"]
        lines += [f"Content-Type: {content_type}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def chunk(self, data: bytes) -> None:
        if data:
            await self.send(b"%x\r\n%s\r\n" % (len(data), data))

    async def json(self, body: Any, status: int = 200) -> None:
        data = json.dumps(body).encode()
        await self.head(status, "application/fhir+json", {"Content-Length": str(len(data))})
        await self.send(data)


async def huge_note(conn: Connection, total: int, chunked: bool) -> None:
    """An Observation whose note is `total` bytes of 'x', sent 1 MB at a time."""
    filler = b"x" * MB
    emit = conn.chunk if chunked else conn.send
    await emit(HUGE_NOTE_START)
    for _ in range(total // MB):
        await emit(filler)
    await emit(HUGE_NOTE_END)
    if chunked:
        await conn.send(b"0\r\n\r\n")


async def behave(conn: Connection, mode: str, url: str, query: dict[str, list[str]]) -> None:
    if mode in ("big-cl", "big-chunked"):
        total = 300 * MB
        if mode == "big-cl":
            length = len(HUGE_NOTE_START) + total + len(HUGE_NOTE_END)
            await conn.head(200, "application/fhir+json", {"Content-Length": str(length)})
            return await huge_note(conn, total, chunked=False)
        await conn.head(200, "application/fhir+json", {"Transfer-Encoding": "chunked"})
        return await huge_note(conn, total, chunked=True)
    if mode == "bomb":
        await conn.head(
            200,
            "application/fhir+json",
            {"Content-Encoding": "gzip", "Transfer-Encoding": "chunked"},
        )
        deflate = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        await conn.chunk(deflate.compress(HUGE_NOTE_START))
        filler = b"x" * MB
        for _ in range(500):
            await conn.chunk(deflate.compress(filler))
        await conn.chunk(deflate.compress(HUGE_NOTE_END) + deflate.flush())
        return await conn.send(b"0\r\n\r\n")
    if mode == "trickle":
        await conn.head(200, "application/fhir+json", {})
        await conn.send(b'{"resourceType":"Bundle","entry":[')
        while True:
            await asyncio.sleep(0.05)
            await conn.send(b" ")
    if mode == "loop":
        return await conn.json(_bundle([], next_url=url))
    if mode == "pages":
        page = int(query.get("page", ["0"])[0])
        base = url.split("?", 1)[0]
        start = page * PAGE_SIZE
        observations = [_observation(i) for i in range(start, start + PAGE_SIZE)]
        return await conn.json(_bundle(observations, next_url=f"{base}?page={page + 1}"))
    if mode == "deep":
        depth = 200_000
        data = (
            b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation",'
            b'"valueString":' + b"[" * depth + b"]" * depth + b"}}]}"
        )
        await conn.head(200, "application/fhir+json", {"Content-Length": str(len(data))})
        return await conn.send(data)
    if mode == "html200":
        page = b"<!doctype html><html><title>Sign in</title><form>Password</form></html>"
        await conn.head(200, "text/html; charset=utf-8", {"Content-Length": str(len(page))})
        return await conn.send(page)
    if mode == "wrong-type":
        await conn.head(200, "application/fhir+xml", {})
        filler = b"<Bundle>" + b" " * (MB - 8)
        for _ in range(300):
            await conn.send(filler)
        return None
    if mode == "huge-record":
        return await conn.json(_bundle([_observation(i) for i in range(RECORD_SIZE)]))
    raise ValueError(mode)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
    conn = Connection(writer, port)
    try:
        request_line = (await reader.readuntil(b"\r\n")).decode()
        await reader.readuntil(b"\r\n\r\n")
        target = request_line.split(" ")[1]
        parts = urlsplit(target)
        segments = parts.path.strip("/").split("/")
        mode, resource_type = segments[0], segments[1] if len(segments) > 1 else ""
        hostile_type = "DiagnosticReport" if mode.endswith("-optional") else "Observation"
        url = f"http://127.0.0.1:{port}{target}"
        if resource_type in (hostile_type, "jwks") and mode != "ok":
            await behave(conn, mode.removesuffix("-optional"), url, parse_qs(parts.query))
        else:
            await conn.json(healthy(resource_type))
    except (ConnectionError, asyncio.IncompleteReadError):
        pass  # the service abandoned the answer: what it should do
    finally:
        writer.close()


async def main() -> None:
    port_box: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handle(reader, writer, port_box[0])

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port_box.append(server.sockets[0].getsockname()[1])
    print(f"PORT {port_box[0]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
