"""Registered FHIR servers (SPEC §5): the EHR's access token is only ever sent to a FHIR server
registered for the calling EHR. A `fhirServer` outside that list is refused before any request
(token leakage, server-side request forgery), with a 4xx in the CDS Hooks error style, logged and
counted. With auth on, the registry is per trusted issuer (CDS_FHIR_SERVERS); with auth off (local
development only) CDS_LOCAL_FHIR_SERVERS governs, "*" meaning any server."""

from __future__ import annotations

import logging

from prometheus_client import Counter

from cds_service.errors import CdsError
from cds_service.security.settings import SecuritySettings

log = logging.getLogger(__name__)

REFUSED = Counter(
    "cds_fhir_server_refused_total",
    "Hook calls whose fhirServer is not registered for the caller (no request was sent)",
)


def normalise(url: str) -> str:
    return url.strip().rstrip("/").lower()


def check_fhir_server(settings: SecuritySettings, issuer: str | None, fhir_server: str) -> None:
    """Raise CdsError (403) unless `fhir_server` may receive this caller's access token."""
    wanted = normalise(fhir_server)
    if settings.auth_required:
        allowed = {normalise(u) for u in settings.fhir_servers.get(issuer or "", [])}
    else:
        allowed = {normalise(u) for u in settings.local_fhir_servers}
        if "*" in allowed:
            return
    if wanted in allowed:
        return
    REFUSED.inc()
    log.warning("fhir_server_refused", extra={"issuer_registered": issuer in settings.fhir_servers})
    raise CdsError(
        403,
        "fhir-server-not-registered",
        "The fhirServer is not registered for this EHR: the service sends no request and no "
        "access token there. Prefetch the data, or register the server (CDS_FHIR_SERVERS).",
    )
