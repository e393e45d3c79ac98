"""Visibility queries for listing journeys, built only from checked values.

Every value is matched against a strict pattern before it is quoted into the query, so
no input can close a quote or add a clause: `pt-1' OR '1'='1` is refused, not escaped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Annotated

from pydantic import BaseModel, Field
from temporalio.client import WorkflowExecution, WorkflowExecutionStatus

from contract.ids import STAGE, TEMPLATE_ID, pseudonymous
from contract.journeys import JourneySummary
from domain.journey import PSEUDONYM
from domain.refill_risk import RiskLevel
from workflows import search_attributes as sa

_SAFE_LITERAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
WORKFLOW_TYPE = "TherapyJourney"


class UnsafeQueryValue(ValueError):
    """A value that may not go into a visibility query (names the field, not the value)."""


class JourneyFilter(BaseModel):
    """Listing filters (pseudonymous ids); each value is checked before it goes into a
    visibility query."""

    patient_ref: Annotated[str, Field(pattern=PSEUDONYM), pseudonymous("patient")] | None = None
    program: Annotated[str, Field(pattern=PSEUDONYM), pseudonymous("program")] | None = None
    template_id: str | None = Field(None, pattern=TEMPLATE_ID)
    stage: str | None = Field(None, pattern=STAGE)
    needs_attention: bool | None = None
    running: bool | None = None
    risk: RiskLevel | None = None
    pdc_below: int | None = Field(None, ge=1, le=101)


def literal(value: str, field: str) -> str:
    if not _SAFE_LITERAL.fullmatch(value):
        raise UnsafeQueryValue(f"{field} may only hold letters, digits, '-', '_' and '.'")
    return f"'{value}'"


def journey_query(where: JourneyFilter) -> str:
    clauses = [f"WorkflowType = {literal(WORKFLOW_TYPE, 'workflow type')}"]
    keyword_filters = (
        (sa.PATIENT.name, where.patient_ref, "patient"),
        (sa.PROGRAM.name, where.program, "program"),
        (sa.TEMPLATE.name, where.template_id, "template"),
        (sa.STAGE.name, where.stage, "stage"),
        (sa.RISK.name, where.risk, "risk"),
    )
    for attribute, value, field in keyword_filters:
        if value is not None:
            clauses.append(f"{attribute} = {literal(value, field)}")
    if where.needs_attention is not None:
        clauses.append(
            f"{sa.NEEDS_ATTENTION.name} = {'true' if where.needs_attention else 'false'}"
        )
    if where.pdc_below is not None:
        clauses.append(f"{sa.PDC.name} < {int(where.pdc_below)}")
    if where.running is not None:
        clauses.append(f"ExecutionStatus {'=' if where.running else '!='} 'Running'")
    return " AND ".join(clauses)


# Page tokens are Temporal's, authenticated with an HMAC so that nothing but a token we
# gave out is ever passed back to Temporal (which chokes on arbitrary bytes).
_MAC_BYTES = 16


def _mac(key: bytes, raw: bytes) -> bytes:
    return hmac.new(key, raw, hashlib.sha256).digest()[:_MAC_BYTES]


def encode_page_token(token: bytes | None, key: bytes) -> str | None:
    if not token:
        return None
    return base64.urlsafe_b64encode(_mac(key, token) + token).decode().rstrip("=")


def decode_page_token(token: str | None, key: bytes) -> bytes | None:
    if not token:
        return None
    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        blob = b""
    mac, raw = blob[:_MAC_BYTES], blob[_MAC_BYTES:]
    if not raw or not hmac.compare_digest(mac, _mac(key, raw)):
        raise UnsafeQueryValue("page_token is not a token this API gave out")
    return raw


def summary(execution: WorkflowExecution) -> JourneySummary:
    found = execution.typed_search_attributes
    status = execution.status or WorkflowExecutionStatus.RUNNING
    return JourneySummary(
        journey_id=execution.id,
        execution_status=status.name.lower(),
        template_id=found.get(sa.TEMPLATE),
        template_version=found.get(sa.TEMPLATE_VERSION),
        stage=found.get(sa.STAGE),
        needs_attention=found.get(sa.NEEDS_ATTENTION),
        patient_ref=found.get(sa.PATIENT),
        program=found.get(sa.PROGRAM),
        risk=found.get(sa.RISK),
        pdc=found.get(sa.PDC),
        started_at=execution.start_time,
        closed_at=execution.close_time,
    )
