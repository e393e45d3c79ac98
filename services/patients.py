"""Patients by the caller's own id: pseudonyms, registration, the masked profile.

A caller names a patient by its id (an MRN, a hub case id). The store keeps only a
keyed hash of it, mapped to a random pseudonym; the pseudonym is what journeys,
partners, logs and metrics ever see. Registration maps the FHIR-shaped request onto
the store's own models and writes the change and its audit note in one transaction.
"""

from __future__ import annotations

import asyncio
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contract.patients import (
    E164,
    EMAIL,
    ContactPoint,
    CoverageOut,
    HumanName,
    PatientIn,
    PatientOut,
    PatientRegistered,
)
from services.errors import InvalidField, PatientNotFound
from store import Store
from store.patient_changes import PatientRegistration
from store.patients import CoverageDetails, PatientDetails, PrescriberDetails

MASK = "•••"
_ON_FILE = ("phone", "email", "address_line1", "birth_date", "caregiver_phone", "caregiver_email")


def mask(address: str | None) -> str | None:
    """+15555550199 → +1•••••0199; jane@example.com → j•••@e•••.com; else •••99."""
    if not address:
        return None
    if re.match(E164, address):
        return f"{address[:2]}{MASK}••{address[-4:]}"
    local, at, domain = address.partition("@")
    if at:
        host, _, tld = domain.rpartition(".")
        return f"{local[:1]}{MASK}@{host[:1]}{MASK}.{tld}" if host else f"{local[:1]}{MASK}@{MASK}"
    return f"{MASK}{address[-2:]}"


def _contacts(telecom: list[ContactPoint], where: str) -> dict[str, str | None]:
    found: dict[str, str | None] = {"phone": None, "email": None}
    for index, point in enumerate(telecom):
        shape = E164 if point.system == "phone" else EMAIL
        if not re.match(shape, point.value):
            raise InvalidField(
                f"{where}[{index}].value", f"not a valid {point.system}", "invalid_address"
            )
        if found[point.system] is None:  # the first of each system is the one on file
            found[point.system] = point.value
    return found


def details_of(patient: PatientIn) -> PatientDetails:
    """The request's demographics as the store's model; only what was given is set."""
    given = patient.model_fields_set
    values: dict[str, object] = {}
    if "name" in given:
        values["given_name"] = " ".join(patient.name.given) if patient.name else None
        values["family_name"] = patient.name.family if patient.name else None
    if "birth_date" in given:
        values["birth_date"] = patient.birth_date
    if "telecom" in given:
        values.update(_contacts(patient.telecom or [], "body.telecom"))
    if "address" in given:
        a = patient.address
        lines = a.line if a else []
        values.update(
            address_line1=lines[0] if lines else None,
            address_line2=lines[1] if len(lines) > 1 else None,
            city=a.city if a else None, region=a.state if a else None,
            postal_code=a.postal_code if a else None, country=a.country if a else None,
        )  # fmt: skip
    if "timezone" in given:
        values["timezone"] = _zone(patient.timezone)
    if "language" in given and patient.language is not None:
        values["language"] = patient.language
    if "caregiver" in given:
        c = patient.caregiver
        contacts = _contacts(c.telecom, "body.caregiver.telecom") if c else {}
        values.update(
            caregiver_name=_full_name(c.name) if c else None,
            caregiver_relationship=c.relationship if c else None,
            caregiver_phone=contacts.get("phone"), caregiver_email=contacts.get("email"),
        )  # fmt: skip
    return PatientDetails.model_validate(values)


def _full_name(name: HumanName | None) -> str | None:
    if name is None:
        return None
    return " ".join([*name.given, name.family or ""]).strip() or None


def _zone(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidField("body.timezone", "not an IANA time zone", "invalid_timezone") from None
    return name


def coverages_of(patient: PatientIn) -> list[CoverageDetails] | None:
    if patient.coverage is None:
        return None
    return [
        CoverageDetails(
            payer_id=c.payor,
            payer_name=c.payor_name,
            plan_name=c.plan_name,
            plan_type=c.plan_type,
            member_id=c.subscriber_id,
            group_number=c.group,
            rx_bin=c.rx_bin,
            rx_pcn=c.rx_pcn,
            rx_group=c.rx_group,
            relationship=c.relationship,
            valid_from=c.period_start,
            valid_to=c.period_end,
        )
        for c in patient.coverage
    ]


def prescriber_of(patient: PatientIn) -> PrescriberDetails | None:
    p = patient.prescriber
    if p is None:
        return None
    return PrescriberDetails(
        npi=p.npi, name=p.name, practice_name=p.practice_name, phone=p.phone, fax=p.fax
    )


class PatientService:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def resolve(self, patient_id: str) -> str | None:
        """Our pseudonym for the caller's id, or None if we never saw it."""
        identities = self.store.identities
        return identities.remembered(patient_id) or await asyncio.to_thread(
            identities.resolve, patient_id
        )

    async def pseudonym(self, patient_id: str) -> str:
        """Our pseudonym for the caller's id, made on first sight."""
        identities = self.store.identities
        known = identities.remembered(patient_id)
        return (
            known
            if known is not None
            else await asyncio.to_thread(identities.pseudonym, patient_id)
        )

    async def register(
        self, patient_id: str, patient: PatientIn, actor: str
    ) -> tuple[str, PatientRegistered]:
        """Create or update the record; returns the pseudonym and the masked profile."""
        details, coverages, prescriber = (
            details_of(patient),
            coverages_of(patient),
            prescriber_of(patient),
        )

        def write() -> tuple[str, PatientRegistered]:
            patient_ref = self.store.identities.pseudonym(patient_id)
            result = self.store.changes.register_patient(
                patient_ref,
                PatientRegistration(details=details, coverages=coverages, prescriber=prescriber),
                actor,
            )
            profile = self._profile(patient_ref)
            assert profile is not None
            registered = PatientRegistered(
                **profile.model_dump(), created=result.created, changed=result.changed
            )
            return patient_ref, registered

        return await asyncio.to_thread(write)

    async def profile(self, patient_ref: str) -> PatientOut:
        profile = await asyncio.to_thread(self._profile, patient_ref)
        if profile is None:
            raise PatientNotFound()
        return profile

    def _profile(self, patient_ref: str) -> PatientOut | None:
        record = self.store.patients.profile(patient_ref)
        if record is None:
            return None
        p = record.patient
        preference = self.store.preferences.current(patient_ref)
        contacts = {
            name: masked
            for name in ("phone", "email", "caregiver_phone", "caregiver_email")
            if (masked := mask(getattr(p, name))) is not None
        }
        return PatientOut(
            patient_ref=patient_ref,
            status="forgotten" if p.forgotten_at else "active",
            forgotten_at=p.forgotten_at,
            on_file=[name for name in _ON_FILE if getattr(p, name) is not None],
            contacts=contacts,
            timezone=p.timezone,
            language=p.language,
            coverages=[
                CoverageOut(
                    rank=c.rank,
                    payor=c.payer_id,
                    plan_type=c.plan_type,
                    subscriber_id=f"{MASK}{c.member_id[-2:]}" if c.member_id else None,
                )
                for c in record.coverages
            ],
            prescriber=record.prescriber is not None,
            opted_out=self.store.preferences.opted_out(patient_ref),
            do_not_contact=bool(preference and preference.do_not_contact),
            consents_in_force=len(self.store.consents.in_force(patient_ref)),
            created_at=p.created_at,
        )
