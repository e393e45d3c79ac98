"""Engine and sessions for the Pitwall store: SQLite file by default, Postgres via DATABASE_URL.

    engine = make_engine(settings.stack.database())
    migrate(engine)                       # Alembic upgrade to head; safe from many processes

Engines never echo statement parameters (`hide_parameters=True`): rows hold PHI, and
neither logs nor exception messages may carry it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, Table, event, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel, create_engine

Row = TypeVar("Row", bound=SQLModel)


def make_engine(url: str, **engine_kwargs: Any) -> Engine:
    """An engine for a SQLAlchemy URL (`sqlite:///path` or `postgresql+psycopg://...`).

    A plain `postgresql://` URL is given the psycopg (3) driver. On Postgres, a throwaway
    schema can be chosen with `?options=-csearch_path%3Dmy_schema` in the URL (see
    `store.testing.throwaway_schema`). Extra keyword arguments go to `create_engine`.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": 30},
            hide_parameters=True,
            **engine_kwargs,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True, hide_parameters=True, **engine_kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets readers run beside the one writer; busy_timeout makes writers queue.
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL never corrupts the database; it syncs at checkpoints rather
        # than at every commit (a power cut may lose the last commits, not a crash).
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest Alembic revision (what the worker, receiver and
    launcher call at start). Serialised across processes; a no-op when up to date."""
    from store.migrations import upgrade

    upgrade(engine)


@contextmanager
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s


def insert_ignore(
    s: Session, table: Table, values: Mapping[str, Any], conflict: Sequence[str] | None = None
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True if the row was inserted.

    `conflict` names the unique columns to arbitrate on; None means any unique constraint.
    Atomic under concurrency on both dialects: of N writers with one key, one inserts.
    """
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        pg = pg_insert(table).values(**values)
        stmt: Any = pg.on_conflict_do_nothing(index_elements=list(conflict) if conflict else None)
    elif dialect == "sqlite":
        lite = sqlite_insert(table).values(**values)
        stmt = lite.on_conflict_do_nothing(index_elements=list(conflict) if conflict else None)
    else:  # pragma: no cover - only SQLite and Postgres are supported
        raise NotImplementedError(f"idempotent insert not supported on {dialect}")
    # RETURNING answers with the row only if it was inserted (rowcount is not reliable
    # here: the dialect may consume the cursor for the implicit primary-key RETURNING).
    first_column = next(iter(table.primary_key.columns))
    return s.execute(stmt.returning(first_column)).first() is not None


def lock_row(s: Session, model: type[Row], key: Any, touch: Any) -> Row | None:
    """The row with this primary key, locked until the transaction ends (None if there
    is none): PostgreSQL SELECT ... FOR UPDATE. SQLite has no row locks; it locks the
    database at a transaction's first write, and a reader that writes later acts on what
    it read before another writer's commit (or fails). So on SQLite take the lock first
    with a write that changes nothing (`touch` = its own value): two writers at once, the
    second sees the first's."""
    if s.get_bind().dialect.name == "sqlite":
        (pk,) = model.__table__.primary_key.columns  # type: ignore[attr-defined]
        s.execute(update(model).where(pk == key).values({touch.key: touch}))
    return s.get(model, key, with_for_update=True)
