"""Settings for tests: read once per set of values, then copied with each test's own database.

Reading Settings costs about 3 ms (pydantic-settings looks every field up in the environment and
.env), and the tests read them several hundred times, mostly with the same few sets of values. The
environment (CDS_* variables) and the working directory are part of the key, so a test that sets a
variable or changes directory gets the settings it asks for; each call gets its own deep copy."""

from __future__ import annotations

import os
from typing import Any

from cds_service.config import Settings

_READ: dict[str, Settings] = {}


def read_settings(database_url: str, **values: Any) -> Settings:
    """What Settings(database_url=database_url, **values) reads, from a copy."""
    environment = sorted((k, v) for k, v in os.environ.items() if k.upper().startswith("CDS_"))
    key = repr((sorted(values.items()), environment, os.getcwd()))
    read = _READ.get(key)
    if read is None:
        read = _READ[key] = Settings(database_url="sqlite:///:memory:", **values)
    return read.model_copy(update={"database_url": database_url}, deep=True)
