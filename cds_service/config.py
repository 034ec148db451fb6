"""Settings, read from the environment (and an optional `.env` file) by pydantic-settings."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cds_service.golive.settings import GoLiveSettings
from cds_service.security.settings import SecuritySettings


def _default_hooks_dir() -> Path:
    """hooks/ of a source checkout when the package runs from one; else ./hooks of the working
    directory (an installed package: the Docker image sets CDS_HOOKS_DIR)."""
    checkout = Path(__file__).resolve().parent.parent / "hooks"
    return checkout if checkout.is_dir() else Path.cwd() / "hooks"


HOOKS_DIR = _default_hooks_dir()

# The public CDS Hooks sandbox (docs/sandbox.md): its issuer, the JWKS it names in every token's
# `jku`, its origin, and its default FHIR servers (DSTU2 by default; R4 selectable).
SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"
SANDBOX_JWKS = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_FHIR_SERVERS = [
    "https://launch.smarthealthit.org/v/r2/fhir",
    "https://launch.smarthealthit.org/v/r4/fhir",
]


class Settings(BaseSettings, SecuritySettings, GoLiveSettings):
    """Every setting has an environment variable: the field name in upper case, prefixed `CDS_`
    (except `DATABASE_URL`). Authentication, CORS and limits come from SecuritySettings; silent
    mode and the vocabulary gaps from GoLiveSettings (docs/go-live.md)."""

    model_config = SettingsConfigDict(env_prefix="CDS_", env_file=".env", extra="ignore")

    # CDS_PROFILE=sandbox: one setting for the CDS Hooks sandbox (docs/sandbox.md): trust its
    # issuer and jku, allow its origin, register its FHIR servers, mirror system actions where
    # its PAMA screen reads them. Explicit settings still apply on top.
    profile: Literal["none", "sandbox"] = "none"

    hooks_dir: Path = HOOKS_DIR
    database_url: str = Field(
        default="sqlite:///var/cds-feedback.sqlite3",
        validation_alias="DATABASE_URL",
    )
    # Run `alembic upgrade head` when the app starts (off: run `cds-service migrate` before).
    migrate_on_startup: bool = True

    # Site overrides of the clinical thresholds in hooks/<knowledge>/rules.yaml (unset: use the file's).
    acute_window_hours: float | None = None
    lookback_days: float | None = None
    fever_celsius: float | None = None
    observation_window_hours: float | None = None
    sih_lookback_days: float | None = None
    recent_study_days: float | None = None

    # A site's own orderable codes added to what the service creates, per recommended study of
    # imaging.yaml `orderables`, e.g. {"dsm-complete-spine": [{"system": "urn:oid:1.2.3", "code":
    # "IMG4471", "display": "DSM complete spine"}]} (CDS_SITE_ORDERABLES, JSON).
    site_orderables: dict[str, list[dict[str, str]]] = Field(default_factory=dict)

    confirm_appropriate_orders: bool = False
    system_actions: bool = True
    system_actions_in_extension: bool = False

    # The /demo page (cds_tools/demo.py). Unset: served only while JWT auth is off, as the page
    # cannot sign CDS Hooks JWTs. CDS_DEMO_ENABLED=false refuses it (404) whatever the auth setting.
    demo_enabled: bool | None = None

    # The batched audit writer (cds_service/persistence/audit_writer.py): rows per transaction, the
    # longest a row waits before it is written, and the bound of the queue (rows beyond it are
    # dropped and counted while the store is unreachable).
    audit_batch_rows: int = Field(default=500, ge=1)
    audit_flush_interval_s: float = Field(default=0.2, gt=0)
    audit_queue_rows: int = Field(default=20_000, ge=1)

    fhir_timeout_s: float = 2.0
    fhir_max_pages: int = 10
    # What one hook call may read from the FHIR server (docs/security.md, "FHIR server answers"):
    # bytes of one response and of all responses together (on the wire and after decompression),
    # and resources across all queries and pages. The large patient of the benchmark is 1.4 MB
    # and about 1,900 resources in all.
    fhir_max_response_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    fhir_max_call_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    fhir_max_call_resources: int = Field(default=20_000, gt=0)

    log_level: str = "INFO"

    @model_validator(mode="after")
    def _apply_profile(self) -> Settings:
        if self.profile == "sandbox":
            self.trusted_issuers = {SANDBOX_ISSUER: SANDBOX_JWKS} | self.trusted_issuers
            self.allowed_jku = {SANDBOX_ISSUER: [SANDBOX_JWKS]} | self.allowed_jku
            self.fhir_servers = {SANDBOX_ISSUER: SANDBOX_FHIR_SERVERS} | self.fhir_servers
            origins = self.cors_origin_list()
            if "*" not in origins and SANDBOX_ISSUER not in origins:
                self.cors_origins = json.dumps([*origins, SANDBOX_ISSUER])
            self.system_actions_in_extension = True
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
