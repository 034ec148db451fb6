"""The demo page end to end in headless Chromium: the app under uvicorn on a free loopback port with a
temporary SQLite store, a clinician's clicks, and the feedback rows they leave in the store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cds_service.api.app import create_app
from cds_service.config import Settings
from cds_service.persistence.store import FeedbackStore, feedback
from cds_tools.fixtures import FIXTURES_DIR, load_fixture
from tests.demo_helpers import (
    ARTIFACTS,
    chromium_page,
    requires_chromium,
    running_server,
    without_auth,
)

pytestmark = [pytest.mark.browser, requires_chromium]

DSM = "Radiographic myelography, digital subtraction, complete spine"
REPLACE_LABEL = "Replace MRI brain without and with contrast with digital subtraction myelography (DSM) of the complete spine"


def stored_rows(settings: Settings) -> list[dict[str, Any]]:
    store = FeedbackStore(settings.database_url)
    with store.engine.connect() as connection:
        return [dict(row) for row in connection.execute(select(feedback)).mappings()]


def open_demo(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/demo")
    page.wait_for_selector("body[data-ready=true]")


def test_persistent_pdph_accepting_dsm_stores_feedback(settings: Settings, tmp_path: Path) -> None:
    settings = without_auth(settings, demo_enabled=True)
    app = create_app(settings)
    with running_server(app) as base_url, chromium_page(tmp_path / "profile") as page:
        open_demo(page, base_url)
        # Choosing a scenario loads it and sends it.
        page.select_option("#fixture-select", "seed-persistent-45f-4-days-after-lp")
        # The first scenario's story may still be shown: wait for the chosen one's, not any.
        page.locator("#fixture-story", has_text="four days ago").wait_for()
        card = page.locator("article.card[data-scenario=pdph-persistent]")
        card.wait_for()
        assert card.count() == 1
        assert "indicator-warning" in (card.get_attribute("class") or "")
        assert card.get_attribute("data-scenario") == "pdph-persistent"
        assert card.locator(".badge").inner_text().lower() == "warning"
        detail = card.locator(".detail")
        assert detail.locator("strong").count() == 2  # the Markdown detail (why, what to do)...
        assert "**" not in detail.inner_text()  # ...rendered, not shown raw
        assert (card.locator(".source a").get_attribute("href") or "").startswith("https://")
        assert card.locator(".override-reason option").count() >= 2
        assert card.locator(".override-reason").input_value() == ""  # no reason preselected
        assert card.locator("button.override-send").is_disabled()

        accept = card.locator("button.accept", has_text=REPLACE_LABEL)
        assert accept.count() == 1
        actions = card.locator(".suggestion .actions").inner_text()
        assert "Cancel the draft order: MRI brain without and with contrast" in actions
        assert f"Order {DSM} (a new draft order)" in actions
        suggestion_uuid = accept.get_attribute("data-suggestion")
        card_uuid = card.get_attribute("data-uuid")

        accept.click()
        page.wait_for_selector(".feedback-status.ok")
        assert "stored 1" in card.locator(".feedback-status").inner_text()
        assert page.locator("#order-list li.cancelled").count() == 1
        assert DSM in page.locator("#order-list li.created").inner_text()
        assert "appropriateness rating not appropriate" in page.inner_text("#system-action-list")

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo-persistent-pdph.png"), full_page=True)
        assert page.errors == []

    assert FeedbackStore(settings.database_url).count() == 1
    [row] = stored_rows(settings)
    assert row["service_id"] == "pdph-imaging-order-select"
    assert row["card_uuid"] == card_uuid
    assert row["outcome"] == "accepted"
    assert json.loads(row["accepted_suggestions"]) == [suggestion_uuid]


def test_pasted_sandbox_request_overridden_with_a_reason(
    settings: Settings, tmp_path: Path
) -> None:
    settings = without_auth(settings, demo_enabled=True)
    fixture = load_fixture(
        FIXTURES_DIR / "sandbox-pama-ct-head-headache-after-epidural.json", datetime.now(UTC)
    )
    with running_server(create_app(settings)) as base_url, chromium_page(tmp_path / "p") as page:
        open_demo(page, base_url)
        page.select_option("#fixture-select", "")  # "paste your own"
        page.select_option("#service-select", "pdph-imaging-order-sign")
        page.fill("#request-json", json.dumps(fixture["request"]))
        # the pasted request's hook picks the service
        assert page.input_value("#service-select") == "pdph-imaging-order-select"
        page.click("#send")

        card = page.locator("article.card[data-scenario=pdph-acute]")
        card.wait_for()
        assert (
            "Cancel the draft order: CT head" in card.locator(".suggestion .actions").inner_text()
        )
        reason = card.locator(".override-reason option").nth(1)
        reason_text = reason.inner_text()
        card.locator(".override-reason").select_option(index=1)
        card.locator(".override-comment").fill("Severe headache, patient asks for imaging")
        card.locator("button.override-send").click()
        page.wait_for_selector(".feedback-status.ok")
        assert "overridden" in card.locator(".feedback-status").inner_text()
        assert card.locator("button.accept").is_disabled()
        assert page.errors == []

    [row] = stored_rows(settings)
    assert row["outcome"] == "overridden"
    assert row["override_reason_display"] == reason_text
    assert row["user_comment"] == "Severe headache, patient asks for imaging"


def test_markdown_renderer_builds_elements_and_never_markup(
    settings: Settings, tmp_path: Path
) -> None:
    settings = without_auth(settings, demo_enabled=True)
    source = "**Why** it *matters*\nsame paragraph\n\n- one `x`\n- two <img src=x onerror=alert(1)>\n  continued\n\n1. first\n2. [link](https://example.org) [bad](javascript:alert(1))"
    script = """async (text) => {
        const { renderMarkdown } = await import("./demo/assets/markdown.js");
        const box = document.createElement("div");
        box.append(renderMarkdown(text));
        return box.innerHTML;
    }"""
    with running_server(create_app(settings)) as base_url, chromium_page(tmp_path / "p") as page:
        open_demo(page, base_url)
        html = page.evaluate(script, source)
    assert html == (
        "<p><strong>Why</strong> it <em>matters</em> same paragraph</p>"
        "<ul><li>one <code>x</code></li>"
        "<li>two &lt;img src=x onerror=alert(1)&gt; continued</li></ul>"
        '<ol><li>first</li><li><a href="https://example.org" target="_blank" '
        'rel="noopener noreferrer">link</a> [bad](javascript:alert(1))</li></ol>'
    )


def test_the_clinicians_view_reads_in_words_without_ids(settings: Settings, tmp_path: Path) -> None:
    """Ratings and selection behaviour in words; resource ids and codes only in the raw response."""
    settings = without_auth(settings, demo_enabled=True)
    with running_server(create_app(settings)) as base_url, chromium_page(tmp_path / "p") as page:
        page.goto(f"{base_url}/demo?fixture=multiple-orders-persistent-order-sign")
        page.wait_for_selector("body[data-ready=true]")
        ehr = page.locator("section.ehr")
        page.click("#raw summary")  # open the raw response, so its text is read too
        raw = page.inner_text("#raw-json")
        shown = ehr.inner_text().replace(page.locator("#raw").inner_text(), "")
        assert "ACR rating of MRI brain without and with contrast: usually not appropriate" in shown
        assert "Accept one suggestion at most, or override the card." in shown
        assert "MRI lumbar spine without and with contrast: appropriateness rating not" in shown
        for code in ("usually-not-appropriate", "at-most-one", "not-appropriate"):
            assert code not in shown and code in raw
        for reference in ("Patient/pat-multi", "ServiceRequest/sr-mri-brain", "sr-mri-lumbar"):
            assert reference not in shown and reference.split("/")[-1] in raw
        expected = page.inner_text("#fixture-expected")
        assert "a warning card (pdph-persistent), the ordered study usually not appropriate" in (
            expected
        )
        assert page.errors == []


def test_a_loading_state_until_data_ready(settings: Settings, tmp_path: Path) -> None:
    """Before the first answer the EHR panel says it is loading (a plain headless screenshot used to
    catch a blank panel); a failed load ends in data-ready=error with the reason, not in a spinner."""
    settings = without_auth(settings, demo_enabled=True)
    with running_server(create_app(settings)) as base_url, chromium_page(tmp_path / "p") as page:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.route("**/demo/fixtures", lambda route: None)  # never answered: stays loading
        page.goto(f"{base_url}/demo")
        loading = page.locator("#loading")
        loading.wait_for()
        assert loading.is_visible() and "Loading" in loading.inner_text()
        assert page.get_attribute("body", "data-ready") == "false"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo-loading-1280.png"))

    with running_server(create_app(settings)) as base_url, chromium_page(tmp_path / "q") as page:
        page.route(
            "**/demo/fixtures",
            lambda route: route.fulfill(status=503, json={"message": "store unavailable"}),
        )
        page.goto(f"{base_url}/demo")
        page.wait_for_selector("body[data-ready=error]")
        assert page.locator("#loading").is_hidden()
        assert "HTTP 503: store unavailable" in page.inner_text("#status")


# The screenshots README and docs show (make screenshots copies the 1280 px ones to docs/images).
SCREENSHOT_CASES = {
    "acute": "seed-acute-34f-after-ms-workup-lp",
    "persistent": "seed-persistent-45f-4-days-after-lp",
    "red-flags": "eclampsia-after-labour-epidural-ct-head",
    "silent": "ms-workup-mri-without-headache-is-silent",
    "multi-order": "multiple-orders-persistent-order-sign",
}


@pytest.mark.parametrize("width", [1280, 480])
def test_screenshots_and_a_card_in_view_at_sidebar_width(
    settings: Settings, tmp_path: Path, width: int
) -> None:
    settings = without_auth(settings, demo_enabled=True)
    ARTIFACTS.mkdir(exist_ok=True)
    with running_server(create_app(settings)) as base_url, chromium_page(tmp_path / "p") as page:
        page.set_viewport_size({"width": width, "height": 900})
        for name, fixture in SCREENSHOT_CASES.items():
            page.goto(f"{base_url}/demo?fixture={fixture}")
            page.wait_for_selector("body[data-ready=true]")
            page.wait_for_selector("#raw:not([hidden])")
            assert page.locator("#patient-banner").is_visible()  # not an empty grey bar
            cards = page.locator("article.card")
            if name == "silent":
                assert cards.count() == 0
                assert page.locator("#cards .no-card").is_visible()  # inside the EHR panel
            else:
                assert cards.count() >= 1
                for select in cards.locator(".override-reason").all():
                    assert select.input_value() == ""
                box = cards.first.bounding_box()
                assert box is not None
                # In view without scrolling sideways, and near the top at sidebar width.
                assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1
                if width == 480:
                    assert box["y"] < 900, "the first card must be in the viewport"
            page.screenshot(path=str(ARTIFACTS / f"demo-{name}-{width}.png"), full_page=True)
        assert page.errors == []


def test_override_analytics_page_in_chromium(settings: Settings, tmp_path: Path) -> None:
    """The informaticists' page: a bar per outcome and week, and the top override reasons."""
    import asyncio

    import httpx

    from tests.ops_helpers import ward_day
    from tests.support.clock import NOW

    settings = without_auth(settings)
    app = create_app(settings, clock=lambda: NOW)
    with running_server(app) as base_url:

        async def populate() -> None:
            async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
                await ward_day(client)

        asyncio.run(populate())  # before Playwright's own event loop starts
        with chromium_page(tmp_path / "p") as page:
            page.goto(f"{base_url}/analytics")
            svg = page.locator("svg[role=img]")
            svg.wait_for()
            assert svg.locator("rect.bar.shown").count() == 8
            heights = [
                float(h or 0)
                for h in svg.locator("rect.bar.overridden").evaluate_all(
                    "bars => bars.map(b => b.getAttribute('height'))"
                )
            ]
            assert heights[-1] > 0  # this week's overrides are drawn
            table = page.locator("table").inner_text()
            assert "pdph-acute" in table and "Severe or refractory headache (2)" in table
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "analytics-page.png"), full_page=True)
            assert page.errors == []


def test_api_docs_render_the_openapi_31_description_offline(
    settings: Settings, tmp_path: Path
) -> None:
    """/docs in Chromium lists the hook operations: Swagger UI 5 reads the OpenAPI 3.1 description
    (4.x answered "Unable to render this definition"), from the app's own assets."""
    settings = without_auth(settings)
    with running_server(create_app(settings)) as base_url, chromium_page(tmp_path / "p") as page:
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(f"{base_url}/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=20_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        text = page.inner_text("body")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=True)
        assert page.errors == []
    normalised = {p.replace("\u200b", "").strip() for p in paths}
    assert "/cds-services/{service_id}" in normalised
    assert "/cds-services/{service_id}/feedback" in normalised
    assert "/cds-services" in normalised
    assert "Unable to render" not in text
    assert "OAS 3.1" in text
    assert all(url.startswith(base_url) for url in requested), requested


def test_the_screenshot_tool_waits_for_data_ready(settings: Settings, tmp_path: Path) -> None:
    """tools/screenshot.py, which docs/sandbox.md gives for headless screenshots of the demo page:
    a picture once the page is ready; one line and exit 1 when it never gets ready."""
    import subprocess
    import sys

    settings = without_auth(settings, demo_enabled=True)
    tool = str(Path(__file__).resolve().parent.parent / "tools" / "screenshot.py")
    out = tmp_path / "acute.png"
    with running_server(create_app(settings)) as base_url:
        url = f"{base_url}/demo?fixture=seed-acute-34f-after-ms-workup-lp"
        done = subprocess.run(
            [sys.executable, tool, url, str(out)], capture_output=True, text=True, timeout=120
        )
        never = subprocess.run(
            [sys.executable, tool, f"{base_url}/healthz", str(tmp_path / "no.png"), "--timeout=1"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert never.returncode == 1
    assert never.stderr.strip() == (
        f"screenshot: {base_url}/healthz did not show body[data-ready=true] in 1 s"
    )
    assert not (tmp_path / "no.png").exists()
