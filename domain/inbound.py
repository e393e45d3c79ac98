"""What a patient's inbound text asks for (DOMAIN.md §5): opt out, opt back in, help, a
possible side effect, or something a person must read.

Carrier keywords count only as the whole message (any case, surrounding spaces and
punctuation ignored), as the CTIA and the FCC read them; plain-language opt-outs in
English and Spanish count too, because an opt-out "by any reasonable means" must be
honoured. A possible side effect outranks everything else: it must reach a person.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum


class Intent(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    SIDE_EFFECT = "side_effect"  # pharmacovigilance: a person reads it, with a trail
    AMBIGUOUS = "ambiguous"  # anything else: a person reads it


OPT_OUT_KEYWORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
)
OPT_IN_KEYWORDS = frozenset({"start", "yes", "unstop"})
HELP_KEYWORDS = frozenset({"help", "info"})

# Plain-language opt-outs, matched on the folded text (lower case, no accents).
_OPT_OUT_PHRASES = tuple(
    re.compile(p)
    for p in (
        r"\b(no|dont|do not|stop) (send(ing)?|text(ing)?|messag(e|es|ing)) ?(me)?\b",
        r"\bno more (texts?|messages?|sms)\b",
        r"\b(stop|quit) (texting|messaging|contacting) me\b",
        r"\bleave me alone\b",
        r"\bremove me\b",
        r"\bunsubscribe me\b",
        r"\bopt (me )?out\b",
        r"\bno mas\b",
        r"\b(ya )?no (me )?(envien|manden|escriban|mande|envie)\b",
        r"\bdejen de (enviar|mandar|escribir)",
        r"\bbaja\b",
    )
)
# Words that may report an adverse event or a product problem (EN / ES).
_SIDE_EFFECT = re.compile(
    r"\b(side effects?|reaction|rash|hives|itch(y|ing)?|swell(ing|ed|en)?|fever|"
    r"vomit(ing|ed)?|nause(a|ous)|dizz(y|iness)|faint(ed)?|bleed(ing)?|pain(ful)?|"
    r"hurts?|injection site|allerg(y|ic)|hospital|er visit|emergency|can'?t breathe|"
    r"breathing|broken|leak(ed|ing)?|defect(ive)?|wrong dose|"
    r"efectos? secundarios?|reaccion|sarpullido|fiebre|mareo|dolor|hinchazon|alergia)\b"
)


def fold(text: str) -> str:
    """Lower case, accents off, punctuation to spaces, spaces collapsed."""
    plain = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in plain if not unicodedata.combining(c)).lower()
    plain = plain.replace("'", "")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain).split())


def classify(body: str) -> Intent:
    text = fold(body)
    if _SIDE_EFFECT.search(text):
        return Intent.SIDE_EFFECT
    if text in OPT_OUT_KEYWORDS:
        return Intent.OPT_OUT
    if text in OPT_IN_KEYWORDS:
        return Intent.OPT_IN
    if text in HELP_KEYWORDS:
        return Intent.HELP
    if any(p.search(text) for p in _OPT_OUT_PHRASES):
        return Intent.OPT_OUT
    return Intent.AMBIGUOUS
