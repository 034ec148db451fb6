"""The demo page at /demo: a small EHR-like screen (static HTML and JavaScript served by the app, no
build step, nothing from a CDN) where a clinician picks a scenario fixture or pastes a request, sends
it to the service and sees the cards as an EHR shows them, with real feedback.

The page cannot sign CDS Hooks JWTs, so it is for local use with auth off. Unless CDS_DEMO_ENABLED
says otherwise, the routes exist only while auth is off; when disabled they answer 404."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from cds_service.api.deps import runtime_of
from cds_service.config import Settings
from cds_service.errors import CdsError
from cds_tools.fixtures import FIXTURES_DIR, fixture_paths, load_fixture

STATIC_DIR = Path(__file__).resolve().parent / "static" / "demo"
ASSET_TYPES = {".js": "text/javascript", ".css": "text/css"}
# Everything the page loads comes from this app: no inline script, no other origin.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def demo_enabled(settings: Settings) -> bool:
    if settings.demo_enabled is not None:
        return settings.demo_enabled
    return not getattr(settings, "auth_required", False)


def _require_enabled(request: Request) -> None:
    if not demo_enabled(runtime_of(request.app).settings):
        raise CdsError(404, "not-found", "the demo page is disabled (CDS_DEMO_ENABLED)")


router = APIRouter(
    prefix="/demo", dependencies=[Depends(_require_enabled)], include_in_schema=False
)


@router.get("")
async def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/assets/{name}")
async def asset(name: str) -> FileResponse:
    path = STATIC_DIR / name
    if path.suffix not in ASSET_TYPES or path.name != name or not path.is_file():
        raise CdsError(404, "not-found", f"no demo asset {name!r}")
    return FileResponse(path, media_type=ASSET_TYPES[path.suffix], headers=PAGE_HEADERS)


def _fixtures() -> dict[str, Path]:
    return {path.stem: path for path in fixture_paths(FIXTURES_DIR)}


@router.get("/fixtures")
async def fixtures(request: Request) -> dict[str, Any]:
    """The scenario fixtures, without their requests: name, title, story, service and outcome."""
    now = runtime_of(request.app).clock()
    fixtures = [load_fixture(path, now) for path in _fixtures().values()]
    keys = ("name", "title", "story", "service", "expected")
    return {"fixtures": [{key: fixture[key] for key in keys} for fixture in fixtures]}


@router.get("/fixtures/{name}")
async def fixture(name: str, request: Request) -> dict[str, Any]:
    """One fixture with its request's times rendered against the service's clock: a current request."""
    path = _fixtures().get(name)
    if path is None:
        raise CdsError(404, "not-found", f"no fixture named {name!r}")
    return load_fixture(path, runtime_of(request.app).clock())
