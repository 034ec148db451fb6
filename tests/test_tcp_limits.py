"""An oversized body over a real TCP connection (SPEC §5): an ordinary client that sends a large body
reads the 413, not a connection reset. uvicorn on loopback, raw sockets and http.client, with and
without Content-Length. (The in-process tests cannot see this: ASGITransport has no socket.)"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import free_port, stop, wait_port

pytestmark = pytest.mark.slow

LIMIT = 1024 * 1024
BODY = b"{" + b" " * (6 * 1024 * 1024) + b"}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    folder = tmp_path_factory.mktemp("tcp")
    env = os.environ | {
        "CDS_AUTH_REQUIRED": "false",
        "CDS_MAX_BODY_BYTES": str(LIMIT),
        "DATABASE_URL": f"sqlite:///{folder / 's.sqlite3'}",
        "CDS_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "uvicorn", "cds_service.asgi:app", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield port
    finally:
        stop(process)


def _raw(port: int, head: bytes, chunks: list[bytes]) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head)
        for chunk in chunks:
            sock.sendall(chunk)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
        return response


PATH = b"/cds-services/pdph-imaging-order-select"


def test_413_with_content_length_over_a_raw_socket(server: int) -> None:
    head = (
        b"POST " + PATH + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n"
    )
    response = _raw(server, head, [BODY[i : i + 65536] for i in range(0, len(BODY), 65536)])
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b'"body-too-large"' in response


def test_413_chunked_without_content_length_over_a_raw_socket(server: int) -> None:
    head = (
        b"POST " + PATH + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    pieces = [BODY[i : i + 65536] for i in range(0, len(BODY), 65536)]
    chunks = [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces] + [b"0\r\n\r\n"]
    response = _raw(server, head, chunks)
    assert response.startswith(b"HTTP/1.1 413"), response[:200]


def test_413_read_by_http_client(server: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=20)
    try:
        connection.request(
            "POST", PATH.decode(), body=BODY, headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        assert response.status == 413
        assert b"body-too-large" in response.read()
    finally:
        connection.close()
