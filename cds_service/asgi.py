"""The ASGI entry point: `uvicorn cds_service.asgi:app`. Importing this module builds the app from the
environment's settings; everything else (tests, tools) calls `create_app` with its own."""

from cds_service.api.app import create_app

app = create_app()
