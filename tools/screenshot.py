"""A headless screenshot of a page once it has finished loading, in the system's Chromium (never a
downloaded browser). The demo page sets `data-ready="true"` on <body> when it shows the answer to the
current request; a plain `chromium --headless --screenshot` takes its picture before that, while the
page still says it is loading.

    .venv/bin/python tools/screenshot.py 'http://127.0.0.1:8080/demo?fixture=seed-acute-34f-after-ms-workup-lp' acute.png
    .venv/bin/python tools/screenshot.py http://127.0.0.1:8080/docs docs.png --wait '.opblock'

Exit 1, with one line saying why, when the page does not get ready in time or reports an error
(`data-ready="error"`)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

READY = "body[data-ready=true]"
FAILED = "body[data-ready=error]"


def chromium() -> str:
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit("screenshot: no Chromium found (Debian's package: apt-get install chromium)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("output", type=Path, help="PNG file to write")
    parser.add_argument("--wait", default=READY, help=f"CSS selector to wait for (default {READY})")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds")
    parser.add_argument("--viewport-only", action="store_true", help="not the full page")
    args = parser.parse_args()

    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.goto(args.url)
            selector = f"{args.wait}, {FAILED}" if args.wait == READY else args.wait
            try:
                page.wait_for_selector(selector, timeout=args.timeout * 1000)
            except Error:
                sys.exit(f"screenshot: {args.url} did not show {args.wait} in {args.timeout:g} s")
            if page.locator(FAILED).count():
                sys.exit(f"screenshot: {args.url} reports an error (data-ready=error)")
            page.screenshot(path=str(args.output), full_page=not args.viewport_only)
        finally:
            browser.close()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
