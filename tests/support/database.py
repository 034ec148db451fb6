"""A migrated SQLite store for a test in a millisecond: the schema is migrated once per session into a
template file, which each test copies. Apps built on it skip the start-up migration (Alembic costs
about 0.15 s an app); the migration itself is tested in tests/test_store_sqlite.py."""

from __future__ import annotations

import shutil
import tempfile
from functools import cache
from pathlib import Path

from cds_service.persistence.store import FeedbackStore


@cache
def _template() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="cds-test-template-"))
    path = folder / "template.sqlite3"
    store = FeedbackStore(f"sqlite:///{path}")
    store.migrate()
    store.engine.dispose()
    store.audit_engine.dispose()
    return path


def migrated_sqlite(path: Path) -> str:
    """A database URL for `path`, holding a fresh copy of the migrated schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_template(), path)
    return f"sqlite:///{path}"
