"""Engine and sessions for the Pitwall store: SQLite file by default, Postgres via DATABASE_URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, SQLModel, create_engine

from store import models  # noqa: F401  (registers the tables)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    return create_engine(url, pool_pre_ping=True)


def create_tables(engine: Engine) -> None:
    SQLModel.metadata.create_all(engine)


@contextmanager
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as s:
        yield s
