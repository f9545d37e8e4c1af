"""Tracking tokens: compact, URL-safe, signed; anything altered is rejected."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.tokens import Kind, Signer, Token

KEYS = (("k2", b"new-secret"), ("k1", b"old-secret"))
signer = Signer(KEYS)
URL_SAFE = set(string.ascii_letters + string.digits + "-_.")

ids = st.integers(min_value=0, max_value=2**53)
tokens = st.builds(
    Token,
    kind=st.sampled_from(list(Kind)),
    company_id=ids,
    message_id=ids,
    lead_id=ids,
    link_index=st.integers(min_value=0, max_value=10_000),
)


@given(tokens)
def test_round_trip_is_url_safe_and_compact(token: Token) -> None:
    text = signer.sign(token)
    assert signer.verify(text) == token
    assert set(text) <= URL_SAFE
    assert len(text) <= 3 + 4 * ((5 * 8 + 12 + 2) // 3)


def test_typical_token_is_short() -> None:
    text = signer.sign(Token(Kind.OPEN, 42, 1_234_567, 98_765, 0))
    assert len(text) <= 32, text


@given(tokens, st.data())
def test_any_altered_character_is_rejected(token: Token, data: st.DataObject) -> None:
    text = signer.sign(token)
    i = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    replacement = data.draw(st.sampled_from(sorted(URL_SAFE - {text[i]})))
    altered = text[:i] + replacement + text[i + 1 :]
    assert signer.verify(altered) is None


@given(tokens, st.data())
def test_truncated_or_extended_tokens_are_rejected(token: Token, data: st.DataObject) -> None:
    text = signer.sign(token)
    cut = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    assert signer.verify(text[:cut]) is None
    assert signer.verify(text + data.draw(st.sampled_from("AQgw-_"))) is None


@given(tokens)
def test_a_token_signed_with_an_unknown_key_is_rejected(token: Token) -> None:
    forger = Signer((("k2", b"guessed-secret"),))
    assert signer.verify(forger.sign(token)) is None


@given(tokens)
def test_keys_rotate_without_breaking_mail_already_sent(token: Token) -> None:
    sent_last_year = Signer((("k1", b"old-secret"),)).sign(token)
    assert signer.verify(sent_last_year) == token  # the old key still verifies
    assert signer.sign(token).startswith("k2.")  # the new key signs
    retired = Signer((("k2", b"new-secret"),))
    assert retired.verify(sent_last_year) is None  # until it is retired


@given(st.text(max_size=300))
def test_garbage_never_raises(text: str) -> None:
    assert signer.verify(text) is None


@pytest.mark.parametrize(
    "text",
    ["", ".", "k2.", "k2", "k2.====", "k9.AAAA", "k2." + "A" * 500, "k2.AQID\x00", "../../etc"],
)
def test_malformed_tokens_are_rejected(text: str) -> None:
    assert signer.verify(text) is None


@pytest.mark.parametrize("kid", ["", "a.b", "é"])
def test_key_ids_must_be_plain(kid: str) -> None:
    with pytest.raises(ValueError):
        Signer(((kid, b"secret"),))


@given(tokens, st.binary(min_size=1, max_size=100))
def test_the_tag_is_plain_hmac_sha256_so_mail_already_sent_still_verifies(
    token: Token, secret: bytes
) -> None:
    """The tag is computed with two pre-keyed hashlib objects; it must stay exactly
    HMAC-SHA256(secret, kid || payload) cut to 12 bytes, for keys short and long."""
    import base64
    import hashlib
    import hmac

    one = Signer([("kid", secret)])
    text = one.sign(token)
    raw = base64.urlsafe_b64decode(text.split(".", 1)[1] + "==")
    payload, tag = raw[:-12], raw[-12:]
    assert tag == hmac.new(secret, b"kid" + payload, hashlib.sha256).digest()[:12]


def test_a_golden_token_from_an_earlier_release_still_verifies() -> None:
    # signed by the release before the hashlib-based tag; must verify forever
    old = Signer([("bench", b"bench-secret-key")])
    assert old.verify("bench.AQzAxAfNgwYAeH19XhHaNLs5US0l") == Token(
        Kind.OPEN, 12, 123456, 98765, 0
    )


def test_other_spellings_of_the_same_bytes_are_rejected() -> None:
    text = signer.sign(Token(Kind.OPEN, 1, 2, 3, 4))
    kid, body = text.split(".")
    assert len(body) % 4 in (2, 3)  # a last character with spare bits
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    last = alphabet.index(body[-1])
    spare = 0x0F if len(body) % 4 == 2 else 0x03
    for bits in range(1, spare + 1):  # same decoded bytes, other spare bits
        assert signer.verify(f"{kid}.{body[:-1]}{alphabet[last | bits]}") is None
    assert signer.verify(f"{text}=") is None and signer.verify(f"{text}==") is None
    assert signer.verify(text) is not None
