"""All models, imported here so Alembic and the tests see the whole metadata."""

from app.models.jobs import BackgroundJob

__all__ = ["BackgroundJob"]
