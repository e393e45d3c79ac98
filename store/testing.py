"""Helpers for tests that need a real database: a throwaway Postgres schema per run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url

from store.db import make_engine


def postgres_test_url() -> str | None:
    """The Postgres URL tests may use: PITWALL_TEST_DATABASE_URL, else DATABASE_URL, when
    either names a PostgreSQL database (a SQLite DATABASE_URL is not a test database)."""
    for var in ("PITWALL_TEST_DATABASE_URL", "DATABASE_URL"):
        url = os.environ.get(var, "")
        if url.startswith("postgres"):
            return url
    return None


def with_search_path(url: str, schema: str) -> str:
    """`url` with every connection's search_path set to `schema` (libpq `options`)."""
    parsed = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return parsed.render_as_string(hide_password=False)


@contextmanager
def throwaway_schema(url: str, prefix: str = "t_") -> Iterator[str]:
    """Create a fresh schema, yield a URL that uses it, drop it (CASCADE) afterwards.

    Dispose the engines you made from the URL before leaving the block."""
    schema = f"{prefix}{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield with_search_path(url, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
