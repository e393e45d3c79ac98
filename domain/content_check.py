"""The rules approved message content must meet before it can be loaded (DOMAIN §5.6).

`check_content` returns one line per problem, each naming the content, version, channel
and language (`welcome@1 sms/es: ...`, `welcome@1 detail sms/en: ...`); [] when fine.

- Every channel of a version is offered in English and Spanish at least.
- Email has a subject; SMS, push and voice have none.
- Generic wording (`text`) for SMS, push and voice (voicemail) names no drug and no
  diagnosis: drugs from the dictionary of the `drug-named-entity-recognition` package
  (its variant names, brand and generic, of one word or several), the program's own
  product names (`products`) and the diagnosis terms of domain/data/diagnosis_terms.txt.
  `{drug_name}` is allowed in `detail` wording only.
  Email is not restricted (§5.6 restricts SMS, push and voicemail).
- A treatment SMS fits 160 characters with every placeholder at its longest
  (PLACEHOLDER_MAX_LENGTH).
- Placeholders are limited to ALLOWED_PLACEHOLDERS.
- Versions of one content are unique and increasing, each with its approval record.
- Marketing content is promotional and promotional content is marketing (promotional
  messages never bypass caps or quiet hours, §5.5).

Only the package's dictionary file (drug_ner_dictionary.pkl.bz2) is read, never its
modules: importing `drug_named_entity_recognition` builds lookup tables this check does
not use (2.5-2.7 s and 375 MB peak RSS). The names are read on first use, once per
process, and kept as a frozenset (about 0.55 s of it; the process then holds about
56 MB). Measured for a whole process whose first check names a drug, 0.7-0.85 s and
67 MB peak RSS, against 0.06 s and 14 MB for importing this module alone:

    /usr/bin/time -v .venv/bin/python -c \\
        "from domain.content_check import names_drug_or_diagnosis as n; n('Humira')"

Load content outside Temporal's workflow sandbox (the check reads files).
"""

from __future__ import annotations

import bz2
import functools
import importlib.util
import pickle
import re
import string
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

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
    """Drug names by the dictionary, as written in the text, in text order: every run of
    neighbouring tokens (up to _MAX_NAME_WORDS) that is a name ("insulin glargine",
    "sofosbuvir and velpatasvir"), a name inside a longer one found not listed again.
    The dictionary has no Spanish accents folded ("ácido fólico" yes, "interferón" no),
    so each text is looked up as written and without accents; a hyphenated word not
    found whole is also looked up by its parts ("Humira-like")."""
    tokens = _tokens(text)
    spans = _outermost([*_name_spans(tokens), *_name_spans([_fold(t) for t in tokens])])
    found = [(start, -1, " ".join(tokens[start:end])) for start, end in spans]
    covered = {i for start, end in spans for i in range(start, end)}
    for i, token in enumerate(tokens):
        if "-" not in token or i in covered:
            continue
        parts = ["" if p.isdigit() else p for p in token.split("-")]
        folded = [_fold(p) for p in parts]
        for start, end in _outermost([*_name_spans(parts), *_name_spans(folded)]):
            found.append((i, start, "-".join(parts[start:end])))
    return [term for _, _, term in sorted(found)]


def _name_spans(tokens: Sequence[str]) -> list[tuple[int, int]]:
    """(start, end) of the longest dictionary name starting at each token. An empty token
    (a number) is a gap: no name runs across it."""
    names, longest = _drug_names()
    spans: list[tuple[int, int]] = []
    for start, first in enumerate(tokens):
        words = longest.get(first.lower(), 0)
        if not words:
            continue
        stop = start + 1
        while stop < min(len(tokens), start + words) and tokens[stop]:
            stop += 1
        for end in range(stop, start, -1):
            if " ".join(tokens[start:end]).lower() in names:
                spans.append((start, end))
                break
    return spans


def _outermost(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans not inside another one, each once, by start."""
    unique = sorted(set(spans))
    return [
        (s, e)
        for s, e in unique
        if not any(o <= s and e <= f and (o, f) != (s, e) for o, f in unique)
    ]


class _DrugNames(NamedTuple):
    names: frozenset[str]  # lower case, words apart by one space
    longest: Mapping[str, int]  # first word -> most words of a name it starts (at most 12)


_DICTIONARY_PACKAGE = "drug_named_entity_recognition"
_DICTIONARY_FILE = "drug_ner_dictionary.pkl.bz2"
_DICTIONARY_KEY = "drug_variant_to_canonical"  # variant name -> canonical names
_MAX_NAME_WORDS = 12  # the 2.0.9 dictionary's longest name has 11 words


@functools.cache
def _drug_names() -> _DrugNames:
    """The variant names of the package's dictionary, once per process. Names with a
    possessive are kept also without it, as the text is tokenized ("St. John's wort" ->
    "st john wort"); ORDINARY_WORDS are left out."""
    path = _dictionary_path()
    # The package's own data file, unpickled as the package itself does.
    with bz2.open(path, "rb") as f:
        data = pickle.load(f)
    try:
        variants = data[_DICTIONARY_KEY]
    except (KeyError, TypeError):
        raise RuntimeError(
            f"{path}: no {_DICTIONARY_KEY!r} table; the drug check reads this file of "
            f"{_DICTIONARY_PACKAGE} directly, and its format changed"
        ) from None
    names = {str(v) for v in variants}
    del data, variants
    possessive = [n for n in names if "'" in n or _CURLY_APOSTROPHE in n]
    names |= {" ".join(_POSSESSIVE.sub("", w) for w in n.split()) for n in possessive}
    names -= ORDINARY_WORDS
    longest: dict[str, int] = {}
    for name in names:
        first, *rest = name.split(" ")
        longest[first] = min(max(longest.get(first, 0), 1 + len(rest)), _MAX_NAME_WORDS)
    return _DrugNames(frozenset(names), longest)


def _dictionary_path() -> Path:
    """Where the installed `drug-named-entity-recognition` keeps its dictionary. Found
    without importing the package: its __init__ imports drugs_finder, which loads the
    whole dictionary into lookup tables (2.6 s, 375 MB)."""
    spec = importlib.util.find_spec(_DICTIONARY_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / _DICTIONARY_FILE
        if path.is_file():
            return path
    where = ", ".join(folders) if folders else f"no installed {_DICTIONARY_PACKAGE} package"
    raise RuntimeError(
        f"the drug check needs {_DICTIONARY_FILE} of drug-named-entity-recognition; "
        f"not found in {where}"
    )


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
    words = _fold(term).split()
    body = r"[\s\-]+".join("'?".join(re.escape(p) for p in w.split("'")) for w in words)
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
