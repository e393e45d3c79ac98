"""The rules approved message content must meet before it can be loaded (DOMAIN §5.6).

`check_content` returns one line per problem, each naming the content, version, channel
and language (`welcome@1 sms/es: ...`, `welcome@1 detail sms/en: ...`); [] when fine.

- Every channel of a version is offered in English and Spanish at least.
- Email has a subject; SMS, push and voice have none.
- Generic wording (`text`) for SMS, push and voice (voicemail) names no drug and no
  diagnosis: drugs from the `drug-named-entity-recognition` dictionary (brand and generic
  names), the program's own product names (`products`) and the diagnosis terms of
  domain/data/diagnosis_terms.txt. `{drug_name}` is allowed in `detail` wording only.
  Email is not restricted (§5.6 restricts SMS, push and voicemail).
- A treatment SMS fits 160 characters with every placeholder at its longest
  (PLACEHOLDER_MAX_LENGTH).
- Placeholders are limited to ALLOWED_PLACEHOLDERS.
- Versions of one content are unique and increasing, each with its approval record.
- Marketing content is promotional and promotional content is marketing (promotional
  messages never bypass caps or quiet hours, §5.5).

The drug dictionary is large (about 3 s and 350 MB to load), so it is imported on first
use, once per process. Load content outside Temporal's workflow sandbox.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections.abc import Iterable, Iterator
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from domain.content import Channel, ChannelText, ContentVersion, MessageContent

REQUIRED_LANGUAGES = ("en", "es")
SMS_MAX_CHARS = 160
SMS_LIMITED_PURPOSES = frozenset({"treatment"})  # DOMAIN §5.6: "for treatment messages"
RESTRICTED_CHANNELS = frozenset({"sms", "push", "voice"})  # voice = voicemail / TTS script
SUBJECT_CHANNELS = frozenset({"email"})

# Longest value each placeholder is given when sizing an SMS for the worst case.
PLACEHOLDER_MAX_LENGTH: dict[str, int] = {
    "program_name": 40,  # "Pitwall Patient Support" is 23; program names longer than 40 must
    #                      be shortened for SMS by the program, not by the content
    "help_contact": 20,  # "1-800-555-0100" is 14; room for "(800) 555-0100 x12"
    "days_until": 3,  # days until a refill: up to 999
    "due_date": 10,  # ISO date "2026-12-31"
    "first_name": 20,  # longer first names are cut to 20 by the sender
    "drug_name": 30,  # brand name with a device: "Humira Pen" is 10
}
ALLOWED_PLACEHOLDERS = frozenset(PLACEHOLDER_MAX_LENGTH)
DETAIL_ONLY_PLACEHOLDERS = frozenset({"drug_name"})

_LANGUAGE_KEY = re.compile(r"[a-z]{2,3}")

# Ordinary English and Spanish words that the drug dictionary also holds, as an obscure
# brand, an abbreviation of a lab chemical or a mineral. Without this list these words
# would fail real messages; a specialty-program product is never one of them.
ORDINARY_WORDS = frozenset(
    {
        "caps",  # "CAPS" (a buffer chemical): "caps" in English text
        "sits",  # "SITS" (a stilbene reagent): "sits" in English text
        "cobre",  # copper: in Spanish also "charge" ("no se le cobre nada")
        "gana",  # a zanamivir brand: Spanish "gana" (earns, "tiene ganas")
        "dona",  # a glucosamine brand: Spanish "dona" (donates; doughnut)
        "cera",  # "CERA" (an epoetin): Spanish "cera" (wax)
        "vals",  # a valsartan brand: Spanish "vals" (waltz)
        "siga",  # "sIgA" (secretory immunoglobulin A): Spanish "siga" (follow, go on)
    }
)


# -- drug names and diagnoses ----------------------------------------------------------


def names_drug_or_diagnosis(text: str, products: Iterable[str] = ()) -> list[str]:
    """The drug names, program product names and diagnosis terms `text` names, in the order
    found, each once (drugs as written in the text, products as given, diagnoses as listed
    in the data file). Placeholders (`{drug_name}`) are not words and are skipped."""
    plain = _without_placeholders(text)
    found: list[str] = []
    for term in [*_drugs(plain), *_products(plain, products), *_diagnoses(plain)]:
        if term.casefold() not in {f.casefold() for f in found}:
            found.append(term)
    return found


_CURLY_APOSTROPHE = "\u2019"
_WORD = re.compile(rf"[^\W_]+(?:['{_CURLY_APOSTROPHE}\-][^\W_]+)*")
_POSSESSIVE = re.compile(rf"['{_CURLY_APOSTROPHE}]s$", re.IGNORECASE)


def _tokens(text: str) -> list[str]:
    """Words with their inner hyphens kept (the dictionary knows "adalimumab-atto"),
    possessive 's dropped ("Humira's"), and punctuation (®, /, commas) as a separator.
    A number becomes an empty token: the dictionary pairs ordinary words with numbers
    ("at 10" is a dihydrotachysterol brand, "PT 9" another), and a time, an amount or
    "911" names no drug; the empty token keeps the positions and matches nothing."""
    words = _WORD.findall(unicodedata.normalize("NFC", text))
    return ["" if w.isdigit() else _POSSESSIVE.sub("", w) for w in words]


def _drugs(text: str) -> list[str]:
    """Drug names by the dictionary. It looks up single tokens and pairs of neighbouring
    tokens (so "insulin glargine" but not a 3-word name unless a part is a drug itself),
    lower-cased; it has no Spanish accents folded ("ácido fólico" yes, "interferón" no), so
    each text is looked up as written and without accents, and a hyphenated word also by
    its parts ("Humira-like")."""
    tokens = _tokens(text)
    parts = [p for t in tokens if "-" in t for p in t.split("-") if p and not p.isdigit()]
    found: list[str] = []
    # (what is looked up, what is reported): folded tokens line up with the written ones
    for run, shown in ((tokens, tokens), ([_fold(t) for t in tokens], tokens), (parts, parts)):
        for _, start, end in _find_drugs(tuple(run)):
            words = " ".join(shown[start:end])
            if " ".join(run[start:end]).casefold() not in ORDINARY_WORDS:
                found.append(words)
    return found


@functools.lru_cache(maxsize=4096)
def _find_drugs(tokens: tuple[str, ...]) -> list[tuple[dict[str, Any], int, int]]:
    if not tokens:
        return []
    return list(_dictionary()(list(tokens)))


@functools.cache
def _dictionary() -> Any:
    from drug_named_entity_recognition import find_drugs

    return find_drugs


def _products(text: str, products: Iterable[str]) -> list[str]:
    folded = _fold(text)
    return [p for p in products if p.strip() and _phrase(p).search(folded)]


def _diagnoses(text: str) -> list[str]:
    """Diagnosis terms in the text; a term inside a longer one found ("arthritis" in
    "rheumatoid arthritis") is not listed again."""
    folded = _fold(text)
    spans: list[tuple[int, int, str]] = []
    for term, pattern in _diagnosis_patterns():
        for m in pattern.finditer(folded):
            spans.append((m.start(), m.end(), term))
    found: list[str] = []
    for start, end, term in spans:
        inside = any(s <= start and end <= e and (s, e) != (start, end) for s, e, _ in spans)
        if not inside and term not in found:
            found.append(term)
    return found


@functools.cache
def diagnosis_terms() -> tuple[str, ...]:
    """The diagnosis terms from domain/data/diagnosis_terms.txt, as written there."""
    source = resources.files("domain").joinpath("data/diagnosis_terms.txt")
    lines = source.read_text(encoding="utf-8").splitlines()
    return tuple(t for t in (line.split("#", 1)[0].strip() for line in lines) if t)


@functools.cache
def _diagnosis_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((term, _phrase(term, plural=True)) for term in diagnosis_terms())


def _phrase(term: str, plural: bool = False) -> re.Pattern[str]:
    """A word-boundary pattern for a term, matched against _fold()ed text: words apart by
    spaces or hyphens, apostrophes optional, optionally a plural ending."""
    words = _fold(term).replace("'", "").split()
    body = r"[\s\-]+".join("'?".join(re.escape(c) for c in w) for w in words)
    suffix = r"(?:e?s)?" if plural else ""
    return re.compile(rf"(?<!\w){body}{suffix}(?!\w)")


def _fold(text: str) -> str:
    """Lower case, accents dropped ("Cáncer" -> "cancer"), curly apostrophes straightened."""
    decomposed = unicodedata.normalize("NFKD", text.replace(_CURLY_APOSTROPHE, "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


# -- placeholders ----------------------------------------------------------------------


def placeholders_in(text: str) -> frozenset[str]:
    """The {name} placeholders of a text; malformed ones are left to check_content."""
    try:
        return frozenset(f for _, f, _, _ in string.Formatter().parse(text) if f)
    except ValueError:
        return frozenset()


def _placeholder_problems(text: str, detail: bool) -> list[str]:
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError as exc:
        return [f"malformed placeholder ({exc}); write {{{{ and }}}} for literal braces"]
    problems: list[str] = []
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name == "":
            problems.append("empty placeholder {}; name it, e.g. {program_name}")
        elif name not in ALLOWED_PLACEHOLDERS:
            allowed = ", ".join(sorted(ALLOWED_PLACEHOLDERS))
            problems.append(f"unknown placeholder {{{name}}}; allowed: {allowed}")
        elif name in DETAIL_ONLY_PLACEHOLDERS and not detail:
            problems.append(
                f"{{{name}}} names the drug: allowed in `detail` wording only, "
                "never in generic `text`"
            )
        if spec or conversion:
            problems.append(f"placeholder {{{name}}} takes no format spec or conversion")
    return problems


def worst_case(text: str) -> str:
    """The text with each placeholder at its longest (unknown ones kept as written)."""
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return text
    out = []
    for literal, name, _, _ in fields:
        out.append(literal)
        if name is not None:
            size = PLACEHOLDER_MAX_LENGTH.get(name)
            out.append("X" * size if size is not None else "{" + name + "}")
    return "".join(out)


def _without_placeholders(text: str) -> str:
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return text
    return " ".join(literal for literal, _, _, _ in fields)


# -- the check -------------------------------------------------------------------------


def check_content(content: MessageContent, products: Iterable[str] = ()) -> list[str]:
    """Every problem of a content and its versions; [] when it may be loaded."""
    products = tuple(products)
    problems: list[str] = []
    if (content.purpose == "marketing") != (content.message_class == "promotional"):
        problems.append(
            f"{content.id}: purpose {content.purpose} with message_class "
            f"{content.message_class}; marketing content is promotional and only it"
        )
    if not content.versions:
        problems.append(f"{content.id}: no versions")
    previous: int | None = None
    for version in content.versions:
        if previous is not None and version.version <= previous:
            problems.append(
                f"{content.id}: version {version.version} follows version {previous}; "
                "versions must be unique and increasing"
            )
        previous = version.version if previous is None else max(previous, version.version)
        problems += check_version(content, version, products)
    return problems


def check_version(
    content: MessageContent, version: ContentVersion, products: Iterable[str] = ()
) -> list[str]:
    """The problems of one version of a content (the per-version part of check_content)."""
    products = tuple(products)
    where = f"{content.id}@{version.version}"
    problems: list[str] = []
    if not version.approved_by.strip():
        problems.append(f"{where}: approved_by is empty; name the approval record")
    if not version.text:
        problems.append(f"{where}: offers no channel")
    for channel, languages in version.text.items():
        missing = [lang for lang in REQUIRED_LANGUAGES if lang not in languages]
        if missing:
            problems.append(f"{where} {channel}: missing language(s) {', '.join(missing)}")
    for channel, languages in version.detail.items():
        if channel not in version.text:
            problems.append(
                f"{where} detail {channel}: no generic {channel} wording to stand in for"
            )
            continue
        extra = sorted(set(languages) - set(version.text[channel]))
        if extra:
            problems.append(
                f"{where} detail {channel}: language(s) {', '.join(extra)} have no generic wording"
            )
    for detail, channel, language, wording in _wordings(version):
        label = f"{where} {'detail ' if detail else ''}{channel}/{language}"
        problems += [
            f"{label}: {p}"
            for p in _wording_problems(content, channel, language, wording, detail, products)
        ]
    return problems


def _wordings(version: ContentVersion) -> Iterator[tuple[bool, Channel, str, ChannelText]]:
    for detail, table in ((False, version.text), (True, version.detail)):
        for channel, languages in table.items():
            for language, wording in languages.items():
                yield detail, channel, language, wording


def _wording_problems(
    content: MessageContent,
    channel: str,
    language: str,
    wording: ChannelText,
    detail: bool,
    products: tuple[str, ...],
) -> list[str]:
    problems: list[str] = []
    if not _LANGUAGE_KEY.fullmatch(language):
        problems.append(
            f"language key {language!r} is not a lower-case language code such as 'en' or 'es'"
        )
    if not wording.text.strip():
        problems.append("text is empty")
    if channel in SUBJECT_CHANNELS and not (wording.subject or "").strip():
        problems.append(f"{channel} needs a subject")
    if channel not in SUBJECT_CHANNELS and wording.subject is not None:
        problems.append(f"{channel} has no subject line; remove `subject`")
    for part in (wording.text, wording.subject or ""):
        problems += _placeholder_problems(part, detail)
    if channel in RESTRICTED_CHANNELS and not detail:
        terms = names_drug_or_diagnosis(wording.text, products)
        if terms:
            problems.append(
                f"generic {channel} wording names a drug or diagnosis: "
                f"{', '.join(repr(t) for t in terms)}; put it in `detail` wording"
            )
    if channel == "sms" and content.purpose in SMS_LIMITED_PURPOSES:
        size = len(worst_case(wording.text))
        if size > SMS_MAX_CHARS:
            problems.append(
                f"{content.purpose} SMS is {size} characters with placeholders at their "
                f"longest; limit {SMS_MAX_CHARS}"
            )
    return problems
