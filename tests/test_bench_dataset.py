"""The benchmark's data builder loads every column the schema requires."""

from __future__ import annotations

from sqlalchemy import inspect

from app.extensions import db
from bench.dataset import TABLES


def test_the_bench_loads_every_required_column_of_its_tables(app):
    """Each table the benchmark fills with COPY gets every column that has no default (the ORM's
    defaults do not run there): a column added to the schema must be added to the builder too."""
    with app.app_context():
        schema = inspect(db.engine)
        missing = {}
        for table, loaded in TABLES.items():
            required = {
                column["name"]
                for column in schema.get_columns(table)
                if not column["nullable"] and column.get("default") is None
            }
            if required - set(loaded):
                missing[table] = sorted(required - set(loaded))
    assert missing == {}, missing
