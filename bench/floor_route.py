"""The framework floor route: the production hook route with the evaluation taken out. It receives
and answers exactly as `POST /cds-services/{id}` does (same route class, request model and response
handling, tried right after it), so the floor moves with any change to how the production route
reads or writes a body."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from cds_service.api.hooks import HOOK_PATH
from cds_service.api.routing import DirectRoute
from cds_service.wire import CdsResponse, HookRequest


def mount(app: FastAPI, path: str) -> None:
    async def floor(service_id: str, body: HookRequest, request: Request) -> Response:
        return Response(
            CdsResponse(cards=[]).model_dump_json(exclude_none=True), media_type="application/json"
        )

    app.router.add_api_route(
        path,
        floor,
        methods=["POST"],
        response_model=CdsResponse,
        response_model_exclude_none=True,
        include_in_schema=False,
        route_class_override=DirectRoute,
    )
    tried_after_the_hook_route(app)


def tried_after_the_hook_route(app: FastAPI) -> None:
    """Move the route just added to right after the production hook route, so that routing costs a
    floor what it costs the hook call (the app tries its routes in order)."""
    routes = app.router.routes
    added = routes.pop()
    hook = next(i for i, r in enumerate(routes) if getattr(r, "path", None) == HOOK_PATH)
    routes.insert(hook + 1, added)
