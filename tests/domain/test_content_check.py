"""The content rules: no drug or diagnosis in generic SMS / push / voicemail, SMS length,
languages, subjects, placeholders, versions (DOMAIN §5.6)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from domain.content import MessageContent, default_catalog
from domain.content_check import (
    PLACEHOLDER_MAX_LENGTH,
    _dictionary_path,
    _drug_names,
    check_content,
    names_drug_or_diagnosis,
    worst_case,
)

REPO = Path(__file__).resolve().parents[2]

FOOTER_EN = " Reply HELP for help, STOP to opt out."
FOOTER_ES = " Responda AYUDA para ayuda, STOP para cancelar."
OK_EN = "{program_name}: your next refill is due in {days_until} days." + FOOTER_EN
OK_ES = "{program_name}: su próximo resurtido vence en {days_until} días." + FOOTER_ES


def sms(en: str = OK_EN, es: str = OK_ES) -> dict[str, Any]:
    return {"en": {"text": en}, "es": {"text": es}}


def make(
    text: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
    purpose: str = "treatment",
    message_class: str = "operational",
    versions: list[dict[str, Any]] | None = None,
) -> MessageContent:
    version = {
        "version": 1,
        "approved_on": "2026-11-15",
        "approved_by": "MLR-2026-999",
        "text": text if text is not None else {"sms": sms()},
        "detail": detail or {},
    }
    return MessageContent.model_validate(
        {
            "id": "probe",
            "description": "a content under test",
            "purpose": purpose,
            "message_class": message_class,
            "versions": versions if versions is not None else [version],
        }
    )


def only_problem(content: MessageContent, products: tuple[str, ...] = ()) -> str:
    problems = check_content(content, products)
    assert len(problems) == 1, problems
    return problems[0]


def test_a_well_formed_content_passes() -> None:
    assert check_content(make()) == []


# -- drug names and diagnoses in generic wording -----------------------------------------


def test_a_brand_name_from_the_dictionary_fails_naming_it() -> None:
    problem = only_problem(make({"sms": sms(en="Time for your Humira refill." + FOOTER_EN)}))
    assert problem.startswith("probe@1 sms/en: ")
    assert "'Humira'" in problem


def test_a_generic_name_fails() -> None:
    problem = only_problem(make({"sms": sms(es="Su adalimumab está listo." + FOOTER_ES)}))
    assert problem.startswith("probe@1 sms/es: ")
    assert "'adalimumab'" in problem


def test_a_program_product_the_dictionary_does_not_know_fails_when_passed() -> None:
    content = make({"sms": sms(en="Your ZORVEXA pen ships today." + FOOTER_EN)})
    assert names_drug_or_diagnosis("Zorvexa") == []  # unknown to the dictionary
    assert check_content(content) == []
    assert "'Zorvexa'" in only_problem(content, products=("Zorvexa",))


@pytest.mark.parametrize(
    ("language", "text", "term"),
    [
        ("en", "We can help with your rheumatoid arthritis.", "rheumatoid arthritis"),
        ("es", "Le ayudamos con su artritis reumatoide.", "artritis reumatoide"),
        ("es", "Apoyo para pacientes con CÁNCER.", "cancer"),
        ("en", "Living well with Crohn\u2019s disease.", "Crohn's disease"),
    ],
)
def test_a_diagnosis_fails_naming_it(language: str, text: str, term: str) -> None:
    wording = sms(en=text + FOOTER_EN) if language == "en" else sms(es=text + FOOTER_ES)
    problem = only_problem(make({"sms": wording}))
    assert problem.startswith(f"probe@1 sms/{language}: ")
    assert repr(term) in problem


def test_voicemail_and_push_are_restricted_too() -> None:
    content = make(
        {
            "voice": sms(en="This is a message about your Enbrel."),
            "push": sms(es="Recordatorio de su Stelara."),
        }
    )
    problems = check_content(content)
    assert any(p.startswith("probe@1 voice/en: ") and "'Enbrel'" in p for p in problems)
    assert any(p.startswith("probe@1 push/es: ") and "'Stelara'" in p for p in problems)


def test_drug_name_placeholder_in_generic_wording_fails() -> None:
    problem = only_problem(make({"sms": sms(en="Your {drug_name} refill is due." + FOOTER_EN)}))
    assert problem.startswith("probe@1 sms/en: ")
    assert "{drug_name}" in problem and "detail" in problem


def test_the_same_drug_name_passes_in_detail_wording_and_in_email() -> None:
    content = make(
        text={
            "sms": sms(),
            "email": {
                "en": {"subject": "Your Humira refill", "text": "Your Humira refill is due."},
                "es": {"subject": "Su resurtido", "text": "Su resurtido de Humira vence."},
            },
        },
        detail={
            "sms": sms(
                en="Your Humira ({drug_name}) refill is due." + FOOTER_EN,
                es="Su resurtido de Humira vence." + FOOTER_ES,
            )
        },
    )
    assert check_content(content) == []


# -- length, languages, subjects, placeholders, versions ---------------------------------


def test_a_treatment_sms_over_160_in_the_worst_case_fails() -> None:
    # 40 characters of program name + 120 of text = 160 exactly: fine; one more fails.
    at_limit = "{program_name}" + "x" * (160 - PLACEHOLDER_MAX_LENGTH["program_name"])
    assert len(worst_case(at_limit)) == 160
    assert check_content(make({"sms": sms(en=at_limit)})) == []
    problem = only_problem(make({"sms": sms(en=at_limit + "x")}))
    assert problem.startswith("probe@1 sms/en: ")
    assert "161 characters" in problem


def test_the_length_limit_applies_to_detail_wording_with_the_longest_drug_name() -> None:
    text = "Your {drug_name} refill." + "x" * 130  # 30-character drug name -> 170
    problem = only_problem(make(detail={"sms": {"en": {"text": text}}}))
    assert problem.startswith("probe@1 detail sms/en: ")


def test_the_length_limit_is_for_treatment_messages_only() -> None:
    long = "{program_name}: " + "x" * 150
    assert check_content(make({"sms": sms(en=long)}, purpose="adherence")) == []


def test_missing_spanish_fails() -> None:
    problem = only_problem(make({"sms": {"en": {"text": OK_EN}}}))
    assert problem == "probe@1 sms: missing language(s) es"


def test_an_email_without_subject_fails_and_an_sms_with_one_fails() -> None:
    content = make(
        {
            "email": {"en": {"text": "Hello."}, "es": {"subject": "Hola", "text": "Hola."}},
            "sms": {"en": {"text": OK_EN, "subject": "Hi"}, "es": {"text": OK_ES}},
        }
    )
    problems = check_content(content)
    assert "probe@1 email/en: email needs a subject" in problems
    assert "probe@1 sms/en: sms has no subject line; remove `subject`" in problems
    assert len(problems) == 2


def test_an_unknown_placeholder_fails() -> None:
    problem = only_problem(make({"sms": sms(es="Hola {patient_name}." + FOOTER_ES)}))
    assert problem.startswith("probe@1 sms/es: unknown placeholder {patient_name}")


def test_malformed_and_formatted_placeholders_fail() -> None:
    content = make({"sms": sms(en="Due in {days_until:>5} days.", es="Vence {}.")})
    assert check_content(content) == [
        "probe@1 sms/en: placeholder {days_until} takes no format spec or conversion",
        "probe@1 sms/es: empty placeholder {}; name it, e.g. {program_name}",
    ]
    problem = only_problem(make({"sms": sms(en="Reply {HELP")}))
    assert problem.startswith("probe@1 sms/en: malformed placeholder")


def test_versions_must_increase_and_name_their_approval() -> None:
    def version(number: int, approved_by: str = "MLR-1") -> dict[str, Any]:
        return {
            "version": number,
            "approved_on": "2026-11-15",
            "approved_by": approved_by,
            "text": {"sms": sms()},
        }

    problems = check_content(make(versions=[version(2), version(1), version(3, " ")]))
    assert problems == [
        "probe: version 1 follows version 2; versions must be unique and increasing",
        "probe@3: approved_by is empty; name the approval record",
    ]


def test_marketing_content_must_be_promotional() -> None:
    problem = only_problem(make(purpose="marketing", message_class="safety"))
    assert "marketing content is promotional" in problem


def test_every_problem_is_listed_at_once() -> None:
    content = make(
        {
            "sms": {"en": {"text": "Your Humira and {drug_name} and {secret}."}},
            "email": {"en": {"text": "Hi."}, "es": {"text": "Hola."}},
        }
    )
    problems = check_content(content)
    assert len(problems) == 6, problems  # es missing, 2 subjects, drug_name, secret, Humira


# -- how the dictionary is used ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("HUMIRA® Pen", ["HUMIRA"]),  # case, trademark sign
        ("your Humira's case", ["Humira"]),  # possessive
        ("insulin glargine", ["insulin glargine"]),  # two-word name
        ("sofosbuvir/velpatasvir", ["sofosbuvir", "velpatasvir"]),  # a combination
        ("sofosbuvir and velpatasvir", ["sofosbuvir and velpatasvir"]),  # one name, 3 words
        ("Take cod liver oil daily.", ["cod liver oil"]),  # no word of it a drug alone
        ("the yellow fever vaccine", ["yellow fever vaccine"]),
        ("St. John\u2019s wort tea", ["St John wort"]),  # punctuation and possessive
        ("adalimumab-atto", ["adalimumab-atto"]),  # found whole: its parts not again
        ("Humira-like pens", ["Humira"]),  # not found whole: by its parts
        ("an insulin-glargine pen", ["insulin-glargine"]),  # parts form a name
        ("interferón beta-1a", ["interferón beta-1a"]),  # Spanish accent
        ("metotrexato", ["metotrexato"]),  # Spanish generic name
        ("cáncer de mama", ["cancer"]),  # diagnosis, Spanish, accent-insensitive
    ],
)
def test_the_check_finds(text: str, found: list[str]) -> None:
    assert names_drug_or_diagnosis(text) == found


@pytest.mark.parametrize(
    "text",
    [
        "Reminder: your appointment is tomorrow at 10:00.",  # "at 10" is a brand
        "Siga las instrucciones. No se le cobre nada si gana menos.",  # ordinary Spanish
        "Our support caps costs; the nurse sits with you.",  # ordinary English
        "Cancerbero guards the gate.",  # a diagnosis only on word boundaries
        "More help is on the way, he said.",  # the dictionary has "[he]", "...''more''"
        "Cod, liver and oil.",  # a name's words apart by punctuation are not the name
        "Call us at 10 or 911.",  # numbers are gaps
    ],
)
def test_ordinary_words_pass(text: str) -> None:
    assert names_drug_or_diagnosis(text) == []


def test_products_match_on_word_boundaries_ignoring_case() -> None:
    assert names_drug_or_diagnosis("zorvexa® now", ["Zorvexa"]) == ["Zorvexa"]
    assert names_drug_or_diagnosis("Zorvexamine", ["Zorvexa"]) == []


def test_no_text_of_the_bundled_catalog_is_a_false_positive() -> None:
    catalog = default_catalog()
    seen = 0
    for content_id in catalog.ids():
        for version in catalog.content(content_id).versions:
            for table in (version.text, version.detail):
                for channel, languages in table.items():
                    for language, wording in languages.items():
                        for part in (wording.text, wording.subject or ""):
                            where = f"{content_id}@{version.version} {channel}/{language}"
                            assert names_drug_or_diagnosis(part) == [], where
                            seen += 1
    assert seen > 50


def test_multi_word_names_are_whole_dictionary_names() -> None:
    names = _drug_names().names
    for name in ("sofosbuvir and velpatasvir", "cod liver oil", "yellow fever vaccine"):
        assert name in names
    assert not {"cod", "liver", "oil", "yellow", "fever", "vaccine"} & names
    assert _drug_names().longest["sofosbuvir"] >= 3
    assert max(_drug_names().longest.values()) >= 6


def test_the_dictionary_loads_from_the_installed_package() -> None:
    # A package upgrade that moves, renames or reshapes the file fails here, loudly.
    spec = importlib.util.find_spec("drug_named_entity_recognition")
    assert spec is not None and spec.submodule_search_locations
    folders = [Path(f) for f in spec.submodule_search_locations]
    assert _dictionary_path().parent in folders
    names = _drug_names().names
    assert len(names) > 100_000
    assert {"humira", "adalimumab", "enbrel", "etanercept"} <= names  # brand and generic
    assert "caps" not in names  # ORDINARY_WORDS are left out


def test_the_check_does_not_import_the_drug_package() -> None:
    # Its __init__ imports drugs_finder, which builds tables of 375 MB; the check reads the
    # package's dictionary file only.
    script = textwrap.dedent(
        """
        import sys
        from domain.content_check import names_drug_or_diagnosis
        assert names_drug_or_diagnosis("Your Humira and adalimumab.") == [
            "Humira", "adalimumab"
        ]
        print(sorted(m for m in sys.modules if m.startswith("drug_named_entity")))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
