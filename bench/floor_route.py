"""The framework floor route: the production hook route with the evaluation taken out. It receives
and answers exactly as `POST /cds-services/{id}` does (same request model, same response handling),
so the floor moves with any change to how the production route reads or writes a body."""

from __future__ import annotations

from fastapi import FastAPI

from cds_service.wire import CdsResponse, HookRequest


def mount(app: FastAPI, path: str) -> None:
    async def floor(service_id: str, body: HookRequest) -> CdsResponse:
        return CdsResponse(cards=[])

    app.add_api_route(
        path,
        floor,
        methods=["POST"],
        response_model=CdsResponse,
        response_model_exclude_none=True,
        include_in_schema=False,
    )
