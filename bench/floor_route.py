"""The framework floor route: the production hook route with the evaluation taken out. It receives
and answers exactly as `POST /cds-services/{id}` does (same route class, request model and response
handling), so the floor moves with any change to how the production route reads or writes a body."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

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
