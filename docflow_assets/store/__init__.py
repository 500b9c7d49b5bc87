"""Persistence: SQLAlchemy models with Alembic migrations, and the object store."""
