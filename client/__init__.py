"""The Pitwall SDK: the /v1 HTTP API, typed with the wire contract (contract/).

- `PitwallHttpClient` (async) and `SyncPitwallHttpClient` (blocking, same methods).
- Errors: `client.errors` (PitwallApiError and its subclasses).

The server's own Temporal access is `gateway/`, not part of the SDK.
"""

from client.errors import PitwallApiError
from client.http import PitwallHttpClient
from client.sync import SyncPitwallHttpClient

__all__ = ["PitwallApiError", "PitwallHttpClient", "SyncPitwallHttpClient"]
