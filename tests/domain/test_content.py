"""The approved content catalog: loading, lookup and rendering per channel and language."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from domain.content import (
    ContentCatalog,
    ContentInvalid,
    ContentRef,
    MessageContent,
    UnknownContent,
    default_catalog,
    messages_dir,
)
from domain.content_check import SMS_MAX_CHARS
from domain.template_loader import DEFAULT_TEMPLATES_DIR

BUNDLED = {
    "welcome",
    "refill_reminder",
    "on_therapy",
    "help_reply",
    "opt_out_confirmation",
    "opt_in_confirmation",
    "outreach_call",
    "safety_notice",
    "copay_offer",
}
VALUES = {"program_name": "Pitwall Patient Support", "help_contact": "1-800-555-0100"}
WELCOME = ContentRef.parse("welcome@1")
REFILL = ContentRef.parse("refill_reminder@1")


@pytest.fixture(scope="module")
def catalog() -> ContentCatalog:
    return default_catalog()


# -- references --------------------------------------------------------------------------


def test_a_reference_reads_and_prints_as_id_at_version() -> None:
    ref = ContentRef.parse("refill_reminder@12")
    assert (ref.id, ref.version, str(ref)) == ("refill_reminder", 12, "refill_reminder@12")
    assert ContentRef.model_validate("welcome@1") == WELCOME  # as a field in YAML / JSON


@pytest.mark.parametrize("text", ["welcome", "welcome@", "welcome@0", "@1", "Welcome@1", "w@1.2"])
def test_a_malformed_reference_is_refused_clearly(text: str) -> None:
    with pytest.raises(ValueError, match="must be <id>@<version>"):
        ContentRef.parse(text)


# -- the bundled catalog -------------------------------------------------------------------


def test_the_bundled_catalog_loads_clean() -> None:
    loaded = ContentCatalog.load()
    assert set(loaded.ids()) == BUNDLED
    assert default_catalog() is default_catalog()  # loaded once


def test_every_bundled_content_offers_english_and_spanish_on_all_its_channels(
    catalog: ContentCatalog,
) -> None:
    for content_id in catalog.ids():
        for version in catalog.content(content_id).versions:
            for channel, languages in version.text.items():
                assert {"en", "es"} <= set(languages), f"{content_id} {channel}"
            for channel, languages in version.detail.items():
                assert set(languages) <= set(version.text[channel]), f"{content_id} {channel}"


def test_every_bundled_sms_says_how_to_stop(catalog: ContentCatalog) -> None:
    for content_id in catalog.ids():
        ref = ContentRef(id=content_id, version=1)
        if "sms" not in catalog.channels(ref):
            continue
        for language in ("en", "es"):
            values = {**VALUES, "days_until": "5"}
            text = catalog.render(ref, "sms", language, values, detail_allowed=False).text
            keyword = "START" if content_id == "opt_out_confirmation" else "STOP"
            assert keyword in text, f"{content_id} {language}"


def test_the_help_reply_has_what_carriers_require(catalog: ContentCatalog) -> None:
    ref = ContentRef.parse("help_reply@1")
    assert catalog.channels(ref) == {"sms"}
    english = catalog.render(ref, "sms", "en", VALUES, detail_allowed=False).text
    for part in ("Pitwall Patient Support", "1-800-555-0100", "3 msgs/week", "Msg & data rates"):
        assert part in english
    assert "STOP" in english
    spanish = catalog.render(ref, "sms", "es", VALUES, detail_allowed=False).text
    assert "1-800-555-0100" in spanish and "STOP" in spanish and "tarifas" in spanish


def test_safety_and_marketing_are_classed_as_such(catalog: ContentCatalog) -> None:
    assert catalog.content("safety_notice").message_class == "safety"
    copay = catalog.content("copay_offer")
    assert (copay.purpose, copay.message_class) == ("marketing", "promotional")


def test_channels_and_placeholders_of_a_version(catalog: ContentCatalog) -> None:
    assert catalog.channels(WELCOME) == {"sms", "email", "voice"}
    assert catalog.placeholders(WELCOME) == {"program_name", "help_contact", "drug_name"}
    assert catalog.placeholders(REFILL) == {
        "program_name",
        "help_contact",
        "days_until",
        "drug_name",
    }


# -- rendering -------------------------------------------------------------------------------


def test_rendering_picks_the_patients_language(catalog: ContentCatalog) -> None:
    spanish = catalog.render(WELCOME, "sms", "es-US", VALUES, detail_allowed=False)
    assert spanish.language == "es"
    assert spanish.text.startswith("Le damos la bienvenida a Pitwall Patient Support.")
    assert spanish.text.endswith("Responda AYUDA para ayuda, STOP para cancelar.")
    english = catalog.render(WELCOME, "sms", "EN", VALUES, detail_allowed=False)
    assert english.language == "en"
    assert english.text == (
        "Welcome to Pitwall Patient Support. Your care team is here to help at "
        "1-800-555-0100. Reply HELP for help, STOP to opt out."
    )


@pytest.mark.parametrize("language", ["fr-CA", "zh-Hant-TW", "", "  "])
def test_rendering_falls_back_to_english(catalog: ContentCatalog, language: str) -> None:
    rendered = catalog.render(WELCOME, "sms", language, VALUES, detail_allowed=False)
    assert rendered.language == "en"
    assert rendered.text.startswith("Welcome to Pitwall Patient Support.")


def test_detail_wording_is_used_only_when_consent_allows_it(catalog: ContentCatalog) -> None:
    values = {**VALUES, "days_until": "5", "drug_name": "Zorvexa"}
    generic = catalog.render(REFILL, "sms", "en", values, detail_allowed=False)
    assert not generic.detail
    assert "Zorvexa" not in generic.text
    assert generic.text.startswith("Pitwall Patient Support: your next refill is due in 5 days.")
    detailed = catalog.render(REFILL, "sms", "es", values, detail_allowed=True)
    assert detailed.detail
    assert "Zorvexa" in detailed.text and detailed.language == "es"


def test_detail_allowed_falls_back_to_generic_where_no_detail_exists(
    catalog: ContentCatalog,
) -> None:
    rendered = catalog.render(
        REFILL, "voice", "en", {**VALUES, "days_until": "5"}, detail_allowed=True
    )
    assert not rendered.detail
    assert "refill is due in 5 days" in rendered.text


def test_email_renders_its_subject(catalog: ContentCatalog) -> None:
    rendered = catalog.render(
        REFILL, "email", "es-MX", {**VALUES, "days_until": "3"}, detail_allowed=False
    )
    assert rendered.subject == "Su próximo resurtido vence en 3 días"
    assert "{" not in rendered.text and "Pitwall Patient Support" in rendered.text
    sms = catalog.render(WELCOME, "sms", "en", VALUES, detail_allowed=False)
    assert sms.subject is None


def test_rendered_treatment_sms_fit_one_message(catalog: ContentCatalog) -> None:
    values = {**VALUES, "days_until": "999", "drug_name": "Zorvexa Pen"}
    for content_id in catalog.ids():
        if catalog.content(content_id).purpose != "treatment":
            continue
        ref = ContentRef(id=content_id, version=1)
        if "sms" not in catalog.channels(ref):
            continue
        for language in ("en", "es"):
            for detail in (False, True):
                text = catalog.render(ref, "sms", language, values, detail_allowed=detail).text
                assert len(text) <= SMS_MAX_CHARS, f"{content_id} {language}"


def test_a_missing_value_is_refused_naming_the_placeholder_not_the_values(
    catalog: ContentCatalog,
) -> None:
    values = {"program_name": "Jane's Clinic", "help_contact": "555-0199"}
    with pytest.raises(ValueError, match=r"\{days_until\}") as caught:
        catalog.render(REFILL, "sms", "en", values, detail_allowed=False)
    assert not isinstance(caught.value, KeyError)
    assert "Jane" not in str(caught.value) and "555-0199" not in str(caught.value)
    with pytest.raises(ValueError, match=r"\{drug_name\}"):
        catalog.render(REFILL, "sms", "en", {**values, "days_until": "2"}, detail_allowed=True)


def test_unknown_content_version_or_channel_names_the_reference(
    catalog: ContentCatalog,
) -> None:
    with pytest.raises(UnknownContent, match="'nope@1'"):
        catalog.get(ContentRef.parse("nope@1"))
    with pytest.raises(UnknownContent, match="'welcome@9' has no such version"):
        catalog.get(ContentRef.parse("welcome@9"))
    with pytest.raises(UnknownContent, match="'welcome@1' has no 'push' wording"):
        catalog.render(WELCOME, "push", "en", VALUES, detail_allowed=False)
    with pytest.raises(UnknownContent):
        catalog.content("nope")


def test_check_for_a_programs_own_product_names() -> None:
    content = MessageContent.model_validate(
        {
            "id": "ship",
            "description": "shipping note",
            "purpose": "treatment",
            "message_class": "operational",
            "versions": [
                {
                    "version": 1,
                    "approved_on": "2026-11-15",
                    "approved_by": "MLR-1",
                    "text": {
                        "sms": {
                            "en": {"text": "Your Zorvexa ships today."},
                            "es": {"text": "Su pedido sale hoy."},
                        }
                    },
                }
            ],
        }
    )
    catalog = ContentCatalog([content])
    ref = ContentRef.parse("ship@1")
    assert catalog.check_for(ref, []) == []
    [problem] = catalog.check_for(ref, ["Zorvexa"])
    assert problem.startswith("ship@1 sms/en: ") and "'Zorvexa'" in problem


# -- loading files ---------------------------------------------------------------------------

GOOD = """\
id: {id}
description: a test content
purpose: treatment
message_class: operational
versions:
  - version: 1
    approved_on: 2026-11-15
    approved_by: MLR-2026-900
    text:
      sms:
        en: {{text: "{en}"}}
        es: {{text: "Hola de {{program_name}}."}}
"""


def write(folder: Path, content_id: str, en: str = "Hi from {program_name}.") -> Path:
    path = folder / f"{content_id}.yaml"
    path.write_text(GOOD.format(id=content_id, en=en), encoding="utf-8")
    return path


def test_load_lists_every_problem_with_file_version_channel_and_language(tmp_path: Path) -> None:
    write(tmp_path, "fine")
    write(tmp_path, "drug", en="Your Humira is here.")
    write(tmp_path, "field", en="Hi {first_name} {ssn}.")
    with pytest.raises(ContentInvalid) as caught:
        ContentCatalog.load(tmp_path)
    problems = caught.value.problems
    assert len(problems) == 2, problems
    assert problems[0].startswith(f"{tmp_path / 'drug.yaml'}: drug@1 sms/en: ")
    assert "'Humira'" in problems[0]
    assert problems[1].startswith(f"{tmp_path / 'field.yaml'}: field@1 sms/en: ")
    assert "{ssn}" in problems[1]
    assert str(caught.value) == "\n".join(problems)


def test_load_checks_the_programs_product_names(tmp_path: Path) -> None:
    write(tmp_path, "ship", en="Your Zorvexa ships today.")
    assert ContentCatalog.load(tmp_path).ids() == ["ship"]
    with pytest.raises(ContentInvalid, match="'Zorvexa'"):
        ContentCatalog.load(tmp_path, products=["Zorvexa"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.format(id="other", en="Hi."), "id 'other' must match the file name"),
        (GOOD.format(id="bad", en="Hi.") + "colour: red\n", "field 'colour': unknown field"),
        (GOOD.format(id="bad", en="Hi.").replace("sms:", "fax:"), "field 'versions[0].text.fax"),
        (GOOD.format(id="bad", en="Hi.").replace("purpose: treatment\n", ""), "'purpose'"),
        ("id: bad\nid: again\n", "duplicate key 'id'"),
        ("id: [bad\n", "invalid YAML"),
        ("- a list\n", "must hold a mapping"),
    ],
)
def test_load_explains_a_broken_file(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "bad.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ContentInvalid) as caught:
        ContentCatalog.load(tmp_path)
    assert any(p.startswith(str(tmp_path / "bad.yaml")) for p in caught.value.problems)
    assert expected in str(caught.value)


def test_load_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ContentInvalid, match="content folder not found"):
        ContentCatalog.load(tmp_path / "absent")


def test_the_catalog_lives_beside_the_templates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "messages").mkdir()
    shutil.copy(messages_dir() / "help_reply.yaml", tmp_path / "messages")
    monkeypatch.setenv("PITWALL_TEMPLATES_DIR", str(tmp_path))
    assert messages_dir() == tmp_path / "messages"
    assert ContentCatalog.load().ids() == ["help_reply"]


def test_a_templates_dir_without_messages_uses_the_bundled_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Test fixtures point PITWALL_TEMPLATES_DIR at folders of journey templates only.
    (tmp_path / "mini.yaml").write_text("id: mini\n", encoding="utf-8")
    monkeypatch.setenv("PITWALL_TEMPLATES_DIR", str(tmp_path))
    assert messages_dir() == DEFAULT_TEMPLATES_DIR / "messages"
    assert set(ContentCatalog.load().ids()) == BUNDLED
