"""Shared test fixtures: an app per test on a temporary SQLite store and a fixed clock.

The service's modules are imported where a fixture first needs them, not here: pytest-xdist's
controller process (make test-fast) loads this file but runs no test, and importing the app costs
it about 0.6 s before the workers even start."""

from __future__ import annotations

import atexit
import gc
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.clock import NOW
from tests.support.tiers import module_tier, never_selected

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI

    from cds_service.config import Settings
    from cds_service.knowledge import Knowledge

# The tests build hundreds of apps beside a heap of about a million long-lived objects (modules,
# models, knowledge): with CPython's default thresholds (700, 10, 10) the fast tier ran 18 full
# collections of about 130 ms each (2.4 s). The tests' process collects less often; the service keeps
# the defaults (and its gc.freeze() at start-up).
gc.set_threshold(10_000, 10, 10)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Once pytest has reported (and collected garbage looking for unraisable exceptions), the
    interpreter's own shutdown would run the cyclic collector again over every object the session
    left (about 2 s after the fast tier): the heap is frozen instead, and the operating system takes
    the memory back."""
    atexit.register(gc.freeze)


_LEFT_OUT: set[str] = set()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A module whose tier `-m` deselects (tests/support/tiers.py) is not imported at all."""
    markexpr = config.option.markexpr
    if not markexpr or not collection_path.name.startswith("test_"):
        return None
    if collection_path.suffix != ".py" or not collection_path.is_file():
        return None
    tier = module_tier(collection_path)
    if tier is None or not never_selected(markexpr, tier):
        return None
    _LEFT_OUT.add(collection_path.name)
    return True


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _LEFT_OUT and terminalreporter.verbosity >= -1:
        left_out = len(_LEFT_OUT)
        terminalreporter.write_line(f"{left_out} modules of deselected tiers not imported")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    from cds_service.config import HOOKS_DIR
    from cds_service.knowledge.registry import load_services

    return next(iter(load_services(HOOKS_DIR).values())).knowledge


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    from tests.support.database import migrated_sqlite
    from tests.support.settings import read_settings

    # The clinical and API tests are not about authentication (tests/test_security_*.py are).
    return read_settings(
        migrated_sqlite(tmp_path / "feedback.sqlite3"),
        auth_required=False,
        migrate_on_startup=False,
    )


@pytest.fixture
def make_app(settings: Settings) -> Callable[..., FastAPI]:
    from cds_service.api.app import create_app

    def build(**overrides: Any) -> FastAPI:
        return create_app(settings.model_copy(update=overrides), clock=lambda: NOW)

    return build


@pytest.fixture
async def client(make_app: Callable[..., FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    from tests.support.client import asgi_client

    async with asgi_client(make_app()) as c:
        yield c


def fixture(name: str, now: datetime = NOW) -> dict[str, Any]:
    from cds_tools.fixtures import FIXTURES_DIR, load_fixture

    return load_fixture(FIXTURES_DIR / f"{name}.json", now)
