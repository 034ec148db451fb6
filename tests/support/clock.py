"""The one instant every test evaluates at (fixtures' relative times are rendered against it)."""

from datetime import UTC, datetime

NOW = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
