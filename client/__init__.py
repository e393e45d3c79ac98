"""Python clients for Pitwall journeys.

- `JourneyClient` (async) and `SyncJourneyClient`: straight to Temporal; for the worker,
  the launcher, starter.py and trusted back-office code.
- `PitwallHttpClient` (async) and `SyncPitwallHttpClient`: the /v1 HTTP API; for services.
"""

from client.http import PitwallApiError, PitwallHttpClient, SyncPitwallHttpClient
from client.journeys import JourneyClient, connect_temporal
from client.sync import SyncJourneyClient

__all__ = [
    "JourneyClient",
    "PitwallApiError",
    "PitwallHttpClient",
    "SyncJourneyClient",
    "SyncPitwallHttpClient",
    "connect_temporal",
]
