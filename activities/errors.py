"""Partner errors → Temporal errors a workflow understands.

Rejections (4xx, validation) are non-retryable with the partner's stable code as the
type, so a template can branch on it; outages (5xx, timeouts) are retried with backoff.
Messages carry codes and statuses only, never patient data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from temporalio.exceptions import ApplicationError

from adapters.errors import PartnerRejected, PartnerUnavailable
from domain.partner_actions import PARTNER_UNAVAILABLE

P = ParamSpec("P")
R = TypeVar("R")


def partner_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    @wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except PartnerRejected as err:
            raise ApplicationError(
                f"{err.partner} rejected the request ({err.status} {err.code})",
                type=err.code,
                non_retryable=True,
            ) from None
        except PartnerUnavailable as err:
            raise ApplicationError(
                f"{err.partner} unavailable ({err.status or 'no response'})",
                type=PARTNER_UNAVAILABLE,
            ) from None

    return wrapper
