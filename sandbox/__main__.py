"""``python -m sandbox``: run the partner sandbox (see sandbox/README.md)."""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("SANDBOX_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "8701")))
    parser.add_argument(
        "--callback-url",
        default=os.environ.get("SANDBOX_CALLBACK_URL", "http://127.0.0.1:8700"),
        help="Base URL of the platform's webhook receiver (env SANDBOX_CALLBACK_URL).",
    )
    parser.add_argument(
        "--secret",
        default=os.environ.get("SANDBOX_WEBHOOK_SECRET", "dev-webhook-secret"),
        help="HMAC secret for signed callbacks (env SANDBOX_WEBHOOK_SECRET).",
    )
    parser.add_argument(
        "--twilio-auth-token",
        default=os.environ.get("SANDBOX_TWILIO_AUTH_TOKEN", "dev-twilio-token"),
        help="Twilio auth token: checks basic auth, signs SMS callbacks "
        "(env SANDBOX_TWILIO_AUTH_TOKEN).",
    )
    parser.add_argument(
        "--callback-api-key",
        default=os.environ.get("SANDBOX_CALLBACK_API_KEY", ""),
        help="Pitwall API key with the webhooks:* scopes: sent as `Authorization: Bearer` on "
        "JSON callbacks and as the basic-auth password of the inbound-SMS webhook URL "
        "(env SANDBOX_CALLBACK_API_KEY; empty: none).",
    )
    parser.add_argument("--log-level", default=os.environ.get("SANDBOX_LOG_LEVEL", "warning"))
    args = parser.parse_args(argv)

    if not _port_free(args.host, args.port):
        print(f"sandbox: port {args.port} on {args.host} is already in use", file=sys.stderr)
        return 1

    import uvicorn

    from sandbox.app import create_app

    app = create_app(args.callback_url, args.secret, args.twilio_auth_token, args.callback_api_key)
    print(
        f"sandbox: listening on http://{args.host}:{args.port}, callbacks to {args.callback_url}",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
