"""Security settings (authentication, CORS, request limits), mixed into `config.Settings` so they are
read from the same `CDS_` environment variables. docs/security.md explains each one."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field, field_validator

# CDS Hooks 2.0.1 names ES384 and RS384; the 256-bit variants are accepted only when a site adds them.
SUPPORTED_ALGORITHMS = ("ES384", "RS384", "ES256", "RS256")


class SecuritySettings(BaseModel):
    auth_required: bool = True
    trusted_issuers: dict[str, str] = Field(default_factory=dict)  # iss -> JWKS URL
    allowed_jku: dict[str, list[str]] = Field(default_factory=dict)  # iss -> allowed jku URLs
    public_base_url: str | None = None
    # FHIR base URLs each trusted issuer's access tokens may be sent to (SPEC §5), e.g.
    # {"https://ehr.example.org": ["https://ehr.example.org/fhir/r4"]} (CDS_FHIR_SERVERS, JSON).
    fhir_servers: dict[str, list[str]] = Field(default_factory=dict)
    # With auth off (local development only): the FHIR servers the service may query; "*" is any.
    local_fhir_servers: list[str] = Field(default_factory=lambda: ["*"])
    auth_algorithms: list[str] = Field(default_factory=lambda: ["ES384", "RS384"])
    auth_clock_skew_s: int = Field(default=60, ge=0, le=600)
    auth_max_token_lifetime_s: int = Field(default=3600, gt=0)
    auth_exempt_paths: list[str] = Field(
        default_factory=lambda: ["/healthz", "/readyz", "/metrics", "/explain/"]
    )
    jwks_cache_ttl_s: float = Field(default=600.0, gt=0)
    jwks_refresh_interval_s: float = Field(default=30.0, ge=0)
    jwks_timeout_s: float = Field(default=2.0, gt=0)
    # A JWK Set larger than this (on the wire or decompressed) is refused; real ones are a few KB.
    jwks_max_bytes: int = Field(default=256 * 1024, gt=0)
    replay_cache: Literal["memory", "database", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"  # CDS_REDIS_URL, for CDS_REPLAY_CACHE=redis
    replay_cache_max_entries: int = Field(default=100_000, gt=0)

    cors_origins: str = "*"  # "*", a comma-separated list, or a JSON list of origins

    max_body_bytes: int = Field(default=5 * 1024 * 1024, gt=0)

    @field_validator("auth_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        refused = [a for a in value if a not in SUPPORTED_ALGORITHMS]
        if refused or not value:
            raise ValueError(
                f"auth_algorithms must be a non-empty subset of {SUPPORTED_ALGORITHMS}"
            )
        return value

    @field_validator("trusted_issuers")
    @classmethod
    def _jwks_urls_are_http(cls, value: dict[str, str]) -> dict[str, str]:
        for issuer, url in value.items():
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"the JWKS URL of issuer {issuer!r} must be an http(s) URL")
        return value

    def cors_origin_list(self) -> list[str]:
        text = self.cors_origins.strip()
        if text.startswith("["):
            origins = json.loads(text)
            if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
                raise ValueError("CDS_CORS_ORIGINS must be a JSON list of strings")
            return origins
        return [origin.strip() for origin in text.split(",") if origin.strip()]
