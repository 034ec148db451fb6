"""Client errors in one JSON shape: `{"error": <code>, "message": <text>, "details": [...]}`."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class CdsError(Exception):
    def __init__(
        self, status: int, error: str, message: str, details: list[Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    """Where and why a body is invalid, without echoing the submitted values."""
    return [
        {"location": ".".join(str(p) for p in e["loc"]) or "body", "problem": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ][:20]
