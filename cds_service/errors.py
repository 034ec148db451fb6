"""Every error the service raises, in one place (the model: httpx's `_exceptions.py`).

    ServiceError              base: an HTTP `status`, a stable `error` code, a `message`, `details`
    ├── CdsError              the caller's request is wrong (4xx as given): unknown service,
    │                         hook mismatch, invalid body, unregistered FHIR server...
    ├── DataUnavailable       412: data the decision needs is neither prefetched nor fetchable
    ├── AuthFailure           401: a token failed one check (`error` names it)
    ├── FhirFetchError        one FHIR query failed; internal, becomes DataUnavailable or a log line
    ├── JwksUnavailable       an issuer's key set cannot be read; internal, becomes AuthFailure
    ├── ResponseRefused       a FHIR or JWKS response passed a cap or cannot be decoded; internal,
    │                         becomes FhirFetchError or JwksUnavailable with the same `cause`
    └── KnowledgeError        a knowledge file is wrong; stops start-up (and `knowledge check`)
                              with one line naming the file, the key and the problem

Every error answered over HTTP has the body `{"error": <code>, "message": <text>, "details": [...]}`
and its class's status: `error_response` is the one way an error becomes an HTTP answer, from a
route's handler (`cds_service/api/errors.py`, which also maps foreign exceptions) or a middleware."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from starlette.responses import JSONResponse


class ServiceError(Exception):
    status = 500
    error = "internal-error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str | None = None,
        details: list[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status if status is not None else type(self).status
        self.error = error if error is not None else type(self).error
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "message": self.message, "details": self.details or []}


class CdsError(ServiceError):
    """A client error, answered with its own status (4xx)."""

    def __init__(
        self, status: int, error: str, message: str, details: list[Any] | None = None
    ) -> None:
        super().__init__(message, status=status, error=error, details=details)


class DataUnavailable(ServiceError):
    """Data the decision needs is neither in the prefetch nor obtainable: answered 412."""

    status = 412
    error = "prefetch-unavailable"

    def __init__(self, missing: dict[str, str]) -> None:
        super().__init__(
            "Data needed to decide is missing from the prefetch and could not be read from the "
            "FHIR server.",
            details=[{"prefetch": key, "cause": cause} for key, cause in missing.items()],
        )
        self.missing = missing

    def __str__(self) -> str:
        return ", ".join(f"{k} ({v})" for k, v in self.missing.items())


class AuthFailure(ServiceError):
    """`error` names the failed check; `message` explains it without repeating the token."""

    status = 401

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, error=code)

    @property
    def code(self) -> str:
        return self.error


class FhirFetchError(ServiceError):
    """A query could not be answered. `cause` is a short class of failure safe to log (no PHI)."""

    error = "fhir-fetch-fault"

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class JwksUnavailable(ServiceError):
    """The key set could not be fetched and none is cached. `cause` is safe to log."""

    error = "jwks-unavailable"

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class ResponseRefused(ServiceError):
    """A response from a server the service does not control was abandoned: over a byte or
    resource cap (`response-too-large`, `call-too-large`, `too-many-resources`) or undecodable
    (`unsupported-encoding`, `invalid-encoding`, `invalid-json`). `cause` is safe to log."""

    error = "response-refused"

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class KnowledgeError(ServiceError, ValueError):
    """A knowledge file is wrong: one line naming the file, the key and the problem."""

    error = "invalid-knowledge"

    def __init__(self, message: str) -> None:
        super().__init__(f"invalid knowledge: {message}")


def error_response(error: ServiceError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=dict(headers or {}))


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    """Where and why a body is invalid, without echoing the submitted values."""
    return [
        {"location": ".".join(str(p) for p in e["loc"]) or "body", "problem": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ][:20]
