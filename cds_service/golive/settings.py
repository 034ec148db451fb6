"""Go-live settings (docs/go-live.md), mixed into `config.Settings` like the security settings, so they
are read from the same `CDS_` environment variables."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator

ALL = "all"
NONE = "none"


class GoLiveSettings(BaseModel):
    # Scenarios evaluated, audited and counted but whose cards are not returned: `all`, or scenario
    # codes separated by commas (`pdph-acute,sih`); empty or `none`: every card is shown.
    silent_scenarios: str = ""
    # PAMA-style system actions computed and audited but not returned (their own switch).
    silent_system_actions: bool = False
    # The vocabulary gap report: the salt of the patient-id hash (unset: a random salt kept in the
    # store, made on first use), the distinct patients an entry needs before it is shown (5 at
    # least), and how long sightings are kept.
    gap_salt: SecretStr | None = None
    gap_min_patients: int = Field(default=5, ge=5)
    gap_retention_days: int = Field(default=90, ge=1, le=3650)

    @field_validator("silent_scenarios")
    @classmethod
    def _scenario_list(cls, value: str) -> str:
        codes = silent_codes(value)
        if ALL in codes and len(codes) > 1:
            raise ValueError("CDS_SILENT_SCENARIOS is either `all` or a list of scenario codes")
        return value

    def silent_scenario_codes(self) -> frozenset[str]:
        """`{"all"}`, the scenario codes named, or nothing."""
        return silent_codes(self.silent_scenarios)


def silent_codes(value: str) -> frozenset[str]:
    codes = {part.strip() for part in value.split(",")} - {""}
    return frozenset() if codes == {NONE} else frozenset(codes)
