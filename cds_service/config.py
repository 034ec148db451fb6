"""Settings, read from the environment (and an optional `.env` file) by pydantic-settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cds_service.security.settings import SecuritySettings

HOOKS_DIR = Path(__file__).resolve().parent.parent / "hooks"


class Settings(BaseSettings, SecuritySettings):
    """Every setting has an environment variable: the field name in upper case, prefixed `CDS_`
    (except `DATABASE_URL`). Authentication, CORS and limits come from SecuritySettings."""

    model_config = SettingsConfigDict(env_prefix="CDS_", env_file=".env", extra="ignore")

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

    fhir_timeout_s: float = 2.0
    fhir_max_pages: int = 10

    log_level: str = "INFO"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
