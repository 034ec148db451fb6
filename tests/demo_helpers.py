"""Helpers shared by the demo, CLI, replay and sandbox tests: settings with auth off, the app under a
real uvicorn server on a free loopback port, and headless Chromium (the system's, never a download)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from cds_service.config import Settings

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


requires_chromium = pytest.mark.skipif(
    chromium_path() is None,
    reason="no Chromium installed at /usr/bin/chromium (.ci/run installs Debian's chromium package)",
)


def without_auth(settings: Settings, **overrides: Any) -> Settings:
    """These tests, like the demo page, cannot sign CDS Hooks JWTs: auth off where the setting exists."""
    if "auth_required" in Settings.model_fields:
        overrides["auth_required"] = False
    return settings.model_copy(update=overrides)


@contextmanager
def running_server(app: FastAPI) -> Iterator[str]:
    """The app under uvicorn in a background thread; yields its base URL on 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@contextmanager
def chromium_page(profile_dir: Path) -> Iterator[Any]:
    """A page in headless Chromium with a fresh profile; page errors are collected in page.errors."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    assert executable is not None
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console",
                lambda message: errors.append(message.text) if message.type == "error" else None,
            )
            page.errors = errors
            yield page
        finally:
            context.close()
