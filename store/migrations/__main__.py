"""python -m store.migrations [upgrade|current|heads] — for DATABASE_URL (or the default
SQLite file). The worker, receiver and launcher upgrade on start; this is for operators
who migrate before rolling out."""

from __future__ import annotations

import sys

from settings import get_settings
from store.db import make_engine
from store.migrations import current, head, upgrade


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "upgrade"
    if command not in ("upgrade", "current", "heads"):
        print("usage: python -m store.migrations [upgrade|current|heads]", file=sys.stderr)
        return 2
    if command == "heads":
        print(head())
        return 0
    engine = make_engine(get_settings().stack.database())
    try:
        if command == "upgrade":
            upgrade(engine)
        print(f"{engine.url.render_as_string(hide_password=True)}: {current(engine) or 'empty'}")
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
