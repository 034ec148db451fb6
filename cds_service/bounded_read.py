"""Reading a response body from a server the service does not control (an EHR's FHIR server, an
issuer's JWKS) within a byte cap, without ever holding more than the cap or stalling the event loop.

The body is streamed and counted as it arrives. The cap applies to the bytes on the wire and to the
bytes after `Content-Encoding`: gzip and deflate are inflated here in steps of at most `STEP_BYTES`
(not by httpx, which inflates a whole network chunk at once: 64 KiB of a gzip bomb is 64 MiB), so a
decompression bomb is stopped at the cap. A body announced larger than the cap by `Content-Length`
is refused before a byte of it is read. JSON of a large body is parsed in a worker thread, in a way
that lets the event loop run while it is parsed (`parse_json`)."""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from cds_service.errors import ResponseRefused

# What the service asks for and can inflate in bounded steps (brotli and zstd are not asked for;
# a server that sends them anyway is refused).
ACCEPT_ENCODING = "gzip, deflate"
STEP_BYTES = 64 * 1024
# Inflating more than this yields to the event loop before going on (about a millisecond of work).
YIELD_EVERY_BYTES = 1024 * 1024
# Bodies up to this size are parsed on the event loop (a few milliseconds at most); larger ones in a
# worker thread.
INLINE_PARSE_BYTES = 256 * 1024

PieceCheck = Callable[[bytes], None]


class _Inflater:
    """One `Content-Encoding` (gzip or deflate) undone in output steps of at most STEP_BYTES."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._raw_deflate_tried = False
        self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 16 if encoding == "gzip" else 15)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            try:
                out = self._inflate.decompress(data, STEP_BYTES)
            except zlib.error as exc:
                if self.encoding == "deflate" and not self._raw_deflate_tried:
                    # Some servers send raw deflate without the zlib header (httpx accepts both).
                    self._raw_deflate_tried = True
                    self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise ResponseRefused("invalid-encoding") from exc
            self._raw_deflate_tried = True
            data = self._inflate.unconsumed_tail
            if out:
                yield out
            # A full step may leave output inside zlib even when all input is consumed.
            if (len(out) < STEP_BYTES and not data) or self._inflate.eof:
                return


def _inflater(response: httpx.Response) -> _Inflater | None:
    encodings = [
        e.strip().lower()
        for e in response.headers.get("content-encoding", "").split(",")
        if e.strip() and e.strip().lower() != "identity"
    ]
    if not encodings:
        return None
    if len(encodings) == 1 and encodings[0] in ("gzip", "x-gzip", "deflate"):
        return _Inflater("deflate" if encodings[0] == "deflate" else "gzip")
    raise ResponseRefused("unsupported-encoding")


def announced_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    return int(value) if value is not None and value.strip().isdigit() else None


async def read_body(
    response: httpx.Response, max_bytes: int, check: PieceCheck | None = None
) -> bytearray:
    """The decoded body of a streamed response (`client.stream(...)`), at most `max_bytes` on the
    wire and after decoding; `check` sees each decoded piece before it is kept and may raise to stop
    the read (a cap shared by several responses). Raises ResponseRefused("response-too-large")
    before keeping a byte beyond the cap; the caller's `async with` then closes the connection."""
    length = announced_length(response)
    if length is not None and length > max_bytes:
        raise ResponseRefused("response-too-large")
    try:
        loaded = response.content  # a response built in memory (a mock transport) is read already
    except httpx.ResponseNotRead:
        pass
    else:
        if len(loaded) > max_bytes:
            raise ResponseRefused("response-too-large")
        for start in range(0, len(loaded), STEP_BYTES):
            if check is not None:
                check(loaded[start : start + STEP_BYTES])
        return bytearray(loaded)
    inflater = _inflater(response)
    body = bytearray()
    wire = 0
    since_yield = 0

    def keep(piece: bytes) -> None:
        if len(body) + len(piece) > max_bytes:
            raise ResponseRefused("response-too-large")
        if check is not None:
            check(piece)
        body.extend(piece)

    try:
        async for chunk in response.aiter_raw():
            wire += len(chunk)
            if wire > max_bytes:
                raise ResponseRefused("response-too-large")
            if inflater is None:
                keep(chunk)
                continue
            for piece in inflater.feed(chunk):
                keep(piece)
                since_yield += len(piece)
                if since_yield >= YIELD_EVERY_BYTES:
                    since_yield = 0
                    await asyncio.sleep(0)
    except BaseException:
        # Freed now: the exception's traceback keeps this frame, and `body` with it, alive.
        body.clear()
        raise
    return body


def _keep(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


def _parse_yielding(body: bytes | bytearray) -> Any:
    # A Python-level object hook runs bytecode for every JSON object, where the interpreter hands
    # the GIL over to the event loop thread when it asks for it; `json.loads` alone would hold the
    # GIL for the whole parse (about 15 ms a megabyte), thread or not.
    return json.loads(body, object_hook=_keep)


async def parse_json(body: bytes | bytearray) -> Any:
    """The JSON value of `body`; a large body is parsed in a worker thread that yields the GIL. A
    body that is not JSON, not UTF-8 or nested too deeply raises ResponseRefused("invalid-json")."""
    try:
        if len(body) <= INLINE_PARSE_BYTES:
            return json.loads(body)
        return await asyncio.to_thread(_parse_yielding, body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ResponseRefused("invalid-json") from exc


def is_json_media_type(content_type: str | None) -> bool:
    """True for JSON types (`application/json`, `application/fhir+json`, DSTU2's
    `application/json+fhir`, any `+json`) and for a response that names no type."""
    if not content_type or not content_type.strip():
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    _, _, subtype = media.partition("/")
    return subtype == "json" or subtype.endswith("+json") or subtype == "json+fhir"
