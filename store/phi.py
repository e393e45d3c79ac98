"""Personal data (PHI) handling shared by the tables: redacted reprs and the list of PHI columns.

Rows are sometimes printed or logged by accident (`log.info("x", row=row)`); the repr of
every table that holds PHI shows `<redacted>` instead of the value, so an accident leaks
nothing. The erasure (`store.erasure.forget`) clears exactly the columns named here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

REDACTED = "<redacted>"


class RedactedRepr:
    """Mixin for SQLModel tables: fields named in `__phi__` never appear in repr / str."""

    __phi__: ClassVar[frozenset[str]] = frozenset()

    def __repr_args__(self) -> Sequence[tuple[str | None, Any]]:
        return [
            (name, REDACTED if name in self.__phi__ and value is not None else value)
            for name, value in super().__repr_args__()  # type: ignore[misc]
        ]
