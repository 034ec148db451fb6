"""The collector tuning the app serves with (cds_service/api/collector.py, issue 23): the heap loaded
before the first call is frozen and full collections are spaced out while the app serves; both are
undone when it stops, so the process (tests, tools) gets CPython's defaults back."""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest
from fastapi import FastAPI

from cds_service.api.collector import FULL_COLLECTION_EVERY, tuned_collector
from tests.support.client import asgi_client


def test_tuned_while_serving_and_restored_after() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with tuned_collector():
        young, middle, old = gc.get_threshold()
        assert (young, middle) == before[:2]
        assert old == max(before[2], FULL_COLLECTION_EVERY) == 100
        assert gc.get_freeze_count() > frozen_before
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before


@pytest.mark.anyio
async def test_the_app_serves_with_the_tuning(make_app: Callable[..., FastAPI]) -> None:
    before = gc.get_threshold()
    async with asgi_client(make_app()) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert gc.get_threshold()[2] == FULL_COLLECTION_EVERY
    assert gc.get_threshold() == before
