"""`starter.py text PATIENT BODY`: the patient texts the program, through the sandbox.

The sandbox's carrier posts the text to our SMS webhook, Twilio-signed, exactly as a real
inbound message arrives; what the webhook answers in TwiML (a HELP answer, the one
confirmation of a STOP or START) the sandbox "sends" back, and this prints it. For the
local stack only: a real patient texts from a real phone.
"""

from __future__ import annotations

import time
from typing import Annotated

import httpx
import typer

from cli.timeline import DatabaseOption, PatientArg, RefOption, open_store, patient_ref_of
from settings import get_settings

BodyArg = Annotated[str, typer.Argument(help="What the patient texts, e.g. STOP or HELP.")]


def text(
    patient: PatientArg,
    body: BodyArg,
    database_url: DatabaseOption = "",
    is_ref: RefOption = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 5.0,
) -> None:
    """Send an inbound text from the patient's phone through the sandbox; print the reply."""
    store = open_store(database_url)
    try:
        patient_ref = patient_ref_of(store, patient, is_ref)
        record = store.patients.get(patient_ref)
    finally:
        store.close()
    if record is None or not record.phone:
        raise typer.BadParameter("that patient has no phone number on file", param_hint="PATIENT")
    sandbox = get_settings().sandbox.base_url()
    with httpx.Client(base_url=sandbox, timeout=10) as http:
        sent = http.post("/_sandbox/sms/inbound", json={"from": record.phone, "body": body})
        sent.raise_for_status()
        sid = sent.json()["message_sid"]
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            replies = http.get("/_sandbox/messages", params={"in_reply_to": sid}).json()
            if replies:
                for reply in replies:
                    typer.echo(f"reply: {reply['body']}")
                break
            time.sleep(0.2)
        else:
            typer.echo("no reply (a STOP already in force, free text or a side effect: see "
                       "`starter.py contacts` and the task queue)")  # fmt: skip
