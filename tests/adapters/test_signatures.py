from __future__ import annotations

import time

from adapters.signatures import sign_body, twilio_signature, verify_body, verify_twilio

SECRET = "s3cret"
BODY = b'{"event_id": "e1"}'


def test_round_trip() -> None:
    ts = int(time.time())
    assert verify_body(SECRET, ts, BODY, sign_body(SECRET, ts, BODY))
    assert verify_body(SECRET, str(ts), BODY, sign_body(SECRET, str(ts), BODY).upper())


def test_forgeries_fail() -> None:
    ts = int(time.time())
    good = sign_body(SECRET, ts, BODY)
    assert not verify_body("other", ts, BODY, good)  # wrong secret
    assert not verify_body(SECRET, ts, BODY + b" ", good)  # tampered body
    assert not verify_body(SECRET, ts + 1, BODY, good)  # tampered timestamp
    stale = ts - 301
    assert not verify_body(SECRET, stale, BODY, sign_body(SECRET, stale, BODY))  # replay
    assert not verify_body(SECRET, ts + 400, BODY, sign_body(SECRET, ts + 400, BODY))  # future
    assert not verify_body(SECRET, ts, BODY, None)
    assert not verify_body(SECRET, None, BODY, good)
    assert not verify_body(SECRET, "yesterday", BODY, good)
    assert not verify_body("", ts, BODY, sign_body("", ts, BODY))


def test_tolerance_and_now() -> None:
    sig = sign_body(SECRET, 1000, BODY)
    assert verify_body(SECRET, 1000, BODY, sig, now=1200)
    assert not verify_body(SECRET, 1000, BODY, sig, now=1400)
    assert verify_body(SECRET, 1000, BODY, sig, tolerance_s=600, now=1400)


def test_twilio_documented_example() -> None:
    # Twilio's documented example (security docs): token 12345, this URL and form.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    assert twilio_signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert verify_twilio("12345", url, params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not verify_twilio(
        "12345", url.replace("foo=1", "foo=2"), params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    )
    assert not verify_twilio("12346", url, params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not verify_twilio(
        "12345", url, {**params, "Digits": "9"}, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    )
    assert not verify_twilio("12345", url, params, None)


def test_twilio_signature_is_the_reference_implementation() -> None:
    from twilio.request_validator import RequestValidator

    url = "https://hub.example.org/v1/webhooks/sms/status?journey=j-1&x=a%20b"
    form = {"MessageSid": "SM1", "MessageStatus": "delivered", "Body": "ä ✓", "Empty": ""}
    ours = twilio_signature("tok", url, form)
    assert ours == RequestValidator("tok").compute_signature(url, form)
    assert verify_twilio("tok", url, form, ours)
    assert verify_twilio("tok", url, form, f" {ours} ")
    # Twilio signs with or without the default port; the reference accepts both.
    assert verify_twilio("tok", url.replace(".org/", ".org:443/"), form, ours)
    assert not verify_twilio("tok", url, {**form, "Empty": "x"}, ours)
    assert not verify_twilio("tok", url.replace("j-1", "j-2"), form, ours)
    assert not verify_twilio("", url, form, twilio_signature("", url, form))


def test_twilio_signature_covers_the_url_without_credentials() -> None:
    bare = "https://hub.example.org/v1/webhooks/sms"
    with_creds = "https://twilio:s3cret@hub.example.org/v1/webhooks/sms"
    form = {"MessageSid": "SM1", "Body": "YES"}
    assert twilio_signature("tok", with_creds, form) == twilio_signature("tok", bare, form)
    assert verify_twilio("tok", with_creds, form, twilio_signature("tok", bare, form))
