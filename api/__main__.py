"""`python -m api`: serve the Pitwall HTTP app (partner callbacks) with uvicorn."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from logs import configure_logging
from settings import get_settings


def main() -> None:
    settings = get_settings()
    settings.require_safe()
    configure_logging(settings.stack.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.receiver.host,
        port=settings.receiver.port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
