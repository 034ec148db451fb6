"""Bringing a database to the schema of `cds_service.persistence.schema`: the Alembic revisions in
`versions/`, run from inside the service (`FeedbackStore.migrate()`, `cds-service migrate`) or by the
`alembic` command line (`alembic.ini` at the repository root, through `env.py`)."""

from __future__ import annotations

import fcntl
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

MIGRATIONS = Path(__file__).resolve().parent
# Serialises migrations of concurrently starting workers and replicas (any constant key will do).
PG_MIGRATION_LOCK = 0x0CD5_0005


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """`alembic upgrade head`, safe to run from every worker at once: PostgreSQL serialises it with
    an advisory lock, SQLite with a lock file beside the database. Returns the revision before
    (None for an empty database) and after."""
    with _migration_lock(engine), engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})")
        config = alembic_config(connection)
        tables = set(inspect(connection).get_table_names())
        before = None
        if "alembic_version" in tables:
            before = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        elif "feedback" in tables:
            command.stamp(config, "0001")  # created by create_all before Alembic came in
            before = "0001"
        command.upgrade(config, "head")
    return (str(before) if before is not None else None), str(head_revision())


def is_current(engine: Engine) -> bool:
    """True when the database is at the latest revision (false too when it was never migrated)."""
    head = head_revision()
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        versions = connection.execute(text("SELECT version_num FROM alembic_version"))
        return [row[0] for row in versions] == [head]


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at the packaged migrations; with `connection`, migrations
    run on it (inside the caller's transaction) instead of opening their own."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with Path(f"{database}.migrate-lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
