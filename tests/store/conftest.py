"""Store tests run on SQLite always, and on PostgreSQL too when PITWALL_TEST_DATABASE_URL or
DATABASE_URL names one (each run in a throwaway schema, dropped at the end)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import Engine, func, select, text

from store import Store
from store.db import make_engine, migrate
from store.models import metadata
from store.testing import postgres_test_url, throwaway_schema

PG_URL = postgres_test_url()
BACKENDS = ["sqlite", *(["postgres"] if PG_URL else [])]

FreshUrl = Callable[[], AbstractContextManager[str]]
T = TypeVar("T")


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def fresh_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> FreshUrl:
    """Makes URLs of new, empty databases of this backend (a file, or a schema)."""

    @contextmanager
    def make() -> Iterator[str]:
        if backend == "sqlite":
            yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'store.db'}"
        else:
            assert PG_URL is not None
            with throwaway_schema(PG_URL) as url:
                yield url

    return make


@pytest.fixture(scope="session")
def database_url(fresh_url: FreshUrl) -> Iterator[str]:
    with fresh_url() as url:
        yield url


@pytest.fixture(scope="session")
def migrated(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(migrated: Engine) -> Engine:
    """The session's migrated database, emptied before each test."""
    with migrated.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
    return migrated


@pytest.fixture
def store(engine: Engine) -> Store:
    return Store(engine)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def together(database_url: str, n: int, write: Callable[[Engine], T]) -> list[T]:
    """n threads, each with its own connection, released at once."""
    engine = make_engine(database_url, pool_size=n, max_overflow=0)
    barrier = threading.Barrier(n)
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            barrier.wait()
            result = write(engine)
            with lock:
                results.append(result)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    assert errors == []
    return results


def count(engine: Engine, table: type, **where: object) -> int:
    """Rows of `table` (with these column values), read on a connection of its own."""
    query = select(func.count()).select_from(table)
    for name, value in where.items():
        query = query.where(getattr(table, name) == value)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
