"""Alembic environment. `FeedbackStore.migrate()` hands in its own connection; the `alembic` command
line (with `alembic.ini` at the repository root) connects to `DATABASE_URL` instead."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from cds_service.config import Settings
from cds_service.persistence.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite can't ALTER most things
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(Settings().database_url)
    with engine.begin() as own_connection:
        _run(own_connection)
    engine.dispose()


def run_offline() -> None:
    context.configure(url=Settings().database_url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
