"""Every inbound keyword and phrase of DOMAIN.md §5, and what must not be mistaken."""

from __future__ import annotations

import pytest

from domain.inbound import Intent, classify

TABLE = [
    # carrier keywords: the whole message, any case, spaces and punctuation around
    *[(word, Intent.OPT_OUT) for word in
      ("STOP", "stop", " Stop ", "STOPALL", "Unsubscribe", "CANCEL", "end", "QUIT", "revoke",
       "OptOut", "stop.", "STOP!")],
    *[(word, Intent.OPT_IN) for word in ("START", "yes", " Unstop ", "Yes!")],
    *[(word, Intent.HELP) for word in ("HELP", "help?", "Info", " INFO ")],
    # plain-language opt-outs, English and Spanish
    ("no more texts", Intent.OPT_OUT),
    ("Please stop texting me", Intent.OPT_OUT),
    ("please don't send me messages", Intent.OPT_OUT),
    ("Remove me from this list", Intent.OPT_OUT),
    ("leave me alone", Intent.OPT_OUT),
    ("No más", Intent.OPT_OUT),
    ("no mas mensajes por favor", Intent.OPT_OUT),
    ("Ya no me envíen mensajes", Intent.OPT_OUT),
    ("dejen de enviarme textos", Intent.OPT_OUT),
    # possible side effects and product problems come first, whatever else is said
    ("I got a rash after the shot", Intent.SIDE_EFFECT),
    ("stop, this medicine makes me dizzy", Intent.SIDE_EFFECT),
    ("the pen was broken and leaked", Intent.SIDE_EFFECT),
    ("tengo efectos secundarios", Intent.SIDE_EFFECT),
    ("I was in the hospital last week", Intent.SIDE_EFFECT),
    # a keyword inside a sentence is not the keyword; free text goes to a person
    ("I will stop by the pharmacy tomorrow", Intent.AMBIGUOUS),
    ("yes I got the package, thanks", Intent.AMBIGUOUS),
    ("can you help me with my copay card", Intent.AMBIGUOUS),
    ("When is my next delivery?", Intent.AMBIGUOUS),
    ("", Intent.AMBIGUOUS),
    ("👍", Intent.AMBIGUOUS),
]  # fmt: skip


@pytest.mark.parametrize(("body", "intent"), TABLE)
def test_inbound_text_is_classified(body: str, intent: Intent) -> None:
    assert classify(body) is intent
