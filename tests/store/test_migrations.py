"""Alembic upgrades an empty database to the models' schema, on SQLite and Postgres."""

from __future__ import annotations

import threading

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from store.db import make_engine, migrate
from store.migrations import current, downgrade, head
from store.models import metadata
from tests.store.conftest import FreshUrl


def test_upgrade_empty_database_to_head_matches_the_models(fresh_url: FreshUrl) -> None:
    with fresh_url() as url:
        engine = make_engine(url)
        try:
            assert current(engine) is None
            migrate(engine)
            assert current(engine) == head()
            tables = set(inspect(engine).get_table_names())
            assert {t.name for t in metadata.sorted_tables} <= tables
            with engine.connect() as conn:
                ctx = MigrationContext.configure(conn, opts={"compare_type": True})
                assert compare_metadata(ctx, metadata) == []
            migrate(engine)  # again: a no-op
            assert current(engine) == head()
        finally:
            engine.dispose()


def test_downgrade_to_base_and_up_again(fresh_url: FreshUrl) -> None:
    with fresh_url() as url:
        engine = make_engine(url)
        try:
            migrate(engine)
            downgrade(engine, "base")
            assert current(engine) is None
            assert "patient" not in inspect(engine).get_table_names()
            migrate(engine)
            assert current(engine) == head()
        finally:
            engine.dispose()


def test_concurrent_starts_migrate_once(fresh_url: FreshUrl) -> None:
    """Worker, receiver and launcher start together and all migrate: none may fail."""
    with fresh_url() as url:
        engines = [make_engine(url) for _ in range(4)]
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(engines))

        def start(engine_index: int) -> None:
            try:
                barrier.wait()
                migrate(engines[engine_index])
            except BaseException as err:  # pragma: no cover - reported below
                errors.append(err)

        threads = [threading.Thread(target=start, args=(i,)) for i in range(len(engines))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            assert errors == []
            assert current(engines[0]) == head()
        finally:
            for engine in engines:
                engine.dispose()
