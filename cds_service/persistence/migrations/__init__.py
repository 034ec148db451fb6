"""Alembic migrations of the feedback and audit store (see `cds_service.persistence.store`)."""
