"""The local stack in one command: Temporal dev server, partner sandbox, callback
receiver and worker, then a handful of demo journeys.

    python devstack.py          # or: make run

Ctrl-C stops every process. Run it again and the same journeys carry on from `.data/`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from types import FrameType

from client.http import PitwallHttpClient
from devtools import demo
from devtools.processes import Children, StackError, require_free_port, wait_for_port
from devtools.temporal_cli import TemporalCliMissing, temporal_cli_path
from gateway.journeys import connect_temporal
from gateway.namespace import ensure_search_attributes
from settings import Settings, get_settings
from store import Store
from workflows import search_attributes as sa


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "localhost", int(port)


def temporal_argv(settings: Settings, cli: str) -> list[str]:
    host, port = _host_port(settings.temporal.address)
    settings.temporal.db_file.parent.mkdir(parents=True, exist_ok=True)
    return [
        cli, "server", "start-dev",
        "--ip", "127.0.0.1" if host in ("localhost", "127.0.0.1") else host,
        "--port", str(port),
        "--ui-port", str(settings.temporal.ui_port),
        "--db-filename", str(settings.temporal.db_file),
        "--namespace", settings.temporal.namespace,
        "--log-level", "warn",
        *sa.cli_flags(),
    ]  # fmt: skip


def check_ports(settings: Settings) -> None:
    host, port = _host_port(settings.temporal.address)
    require_free_port(host, port, "the Temporal dev server", "PITWALL_TEMPORAL_ADDRESS")
    require_free_port(
        host, settings.temporal.ui_port, "the Temporal UI", "PITWALL_TEMPORAL_UI_PORT"
    )
    s, r = settings.sandbox, settings.receiver
    require_free_port(s.host, s.port, "the partner sandbox", "PITWALL_SANDBOX_PORT")
    require_free_port(r.host, r.port, "the callback receiver", "PITWALL_RECEIVER_PORT")


def dev_keys(settings: Settings) -> demo.DevKeys:
    """Migrate the store and make (or find) the dev API keys, before anything starts."""
    store = Store.open(
        settings.stack.database(), api_key_pepper=settings.auth.key_pepper.get_secret_value()
    )
    try:
        return demo.ensure_dev_keys(store.api_keys, settings.stack.data_dir / "dev-api-keys.json")
    finally:
        store.close()


def start_processes(settings: Settings, children: Children, keys: demo.DevKeys) -> None:
    py = sys.executable
    if not settings.receiver.sms_callback_api_key.get_secret_value():
        # The worker puts it into the SMS StatusCallback URL (basic auth, as Twilio sends it).
        children.env["PITWALL_RECEIVER_SMS_CALLBACK_API_KEY"] = keys.partners
    host, port = _host_port(settings.temporal.address)
    temporal = children.start("temporal", temporal_argv(settings, temporal_cli_path(
        settings.temporal.cli_path)))  # fmt: skip
    wait_for_port(host, port, 60, temporal)
    sandbox = children.start(
        "sandbox",
        [
            py, "-m", "sandbox",
            "--host", settings.sandbox.host,
            "--port", str(settings.sandbox.port),
            "--callback-url", settings.receiver.base_url(),
            "--secret", settings.receiver.webhook_secret.get_secret_value(),
            "--twilio-auth-token", settings.partners.twilio_auth_token.get_secret_value(),
            "--callback-api-key", keys.partners,
        ],
    )  # fmt: skip
    wait_for_port(settings.sandbox.host, settings.sandbox.port, 30, sandbox)
    receiver = children.start("receiver", [py, "-m", "api"])
    wait_for_port(settings.receiver.host, settings.receiver.port, 30, receiver)
    children.start("worker", [py, "worker.py"])


async def start_demo(settings: Settings, keys: demo.DevKeys) -> list[str]:
    temporal = await connect_temporal(settings.temporal.address, settings.temporal.namespace)
    await ensure_search_attributes(temporal)
    async with PitwallHttpClient(settings.receiver.base_url(), api_key=keys.admin) as api:
        started = await demo.start_journeys(
            api, settings.sandbox.base_url(), "specialty_start", settings.stack.demo_time_scale
        )
    lines = [f"  {'':8} {'hub patient id':18} {'stage to look for':26} story"]
    for journey in started:
        how = "started" if journey.ack.created else "resumed"
        patient = journey.patient
        lines.append(f"  {how:8} {patient.patient_id:18} {patient.shows:26} {patient.story}")
    return lines


def main() -> int:
    # The local stack runs with development secrets; its children inherit this.
    os.environ.setdefault("PITWALL_ENV", "development")
    settings = get_settings()
    children = Children(log_dir=settings.stack.data_dir / "logs")
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        check_ports(settings)
        print("Starting Temporal, the partner sandbox, the callback receiver and a worker...")
        keys = dev_keys(settings)
        start_processes(settings, children, keys)
        lines = asyncio.run(start_demo(settings, keys))
        print(
            "\nPitwall local stack is up.\n"
            f"  Temporal UI        http://localhost:{settings.temporal.ui_port}"
            "/namespaces/default/workflows\n"
            f"  Temporal frontend  {settings.temporal.address}\n"
            f"  Partner sandbox    {settings.sandbox.base_url()}/_sandbox/received\n"
            f"  Callback receiver  {settings.receiver.base_url()}/healthz\n"
            f"  API docs           {settings.receiver.base_url()}/docs\n"
            f"  Logs               {children.log_dir}/\n"
            f"\nDev API key (admin; kept in {settings.stack.data_dir / 'dev-api-keys.json'}):\n"
            f"  {keys.admin}\n"
            f"  curl -H 'Authorization: Bearer {keys.admin}' "
            f"{settings.receiver.base_url()}/v1/patients/demo-pended\n"
            f"\nDemo journeys (a journey-day every "
            f"{86400 / settings.stack.demo_time_scale:g} s):\n" + "\n".join(lines) + "\n\n"
            'Filter in the Temporal UI: PitwallStage = "ON_HOLD"    |    '
            "PitwallNeedsAttention = true\n"
            "Tasks: python starter.py tasks list --role prescriber_office    |    "
            "python starter.py tasks complete ID --outcome received\n"
            "Try: .venv/bin/temporal workflow list    |    "
            "python starter.py journeys --patient demo-pended\n"
            "Texts: python starter.py contacts demo-stop    |    "
            "python starter.py text demo-approve HELP\n"
            "Ctrl-C stops everything; run again to resume the same journeys.",
            flush=True,
        )
        while not stopping:
            exited = children.first_exited()
            if exited is not None:
                raise StackError(
                    f"{exited.name} stopped unexpectedly (exit {exited.proc.returncode}); "
                    f"last lines of {exited.log_path}:\n{exited.tail()}"
                )
            time.sleep(0.5)
        print("\nStopping...", flush=True)
        return 0
    except (StackError, TemporalCliMissing) as err:
        print(f"pitwall: {err}", file=sys.stderr)
        return 1
    finally:
        children.stop_all()


if __name__ == "__main__":
    sys.exit(main())
