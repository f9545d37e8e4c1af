"""A reader unsubscribes or forwards the email to a friend, through the edge's forms."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from sqlalchemy import insert

from mailbeacon.api.context import Services
from mailbeacon.app import EdgeActions
from mailbeacon.edge.forms import FormNonce, RateLimit
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.schema import hits
from mailbeacon.tokens import Kind, Token


def _nonce(page: str) -> str:
    match = re.search(r'name=nonce value="([^"]+)"', page)
    assert match, page
    return match.group(1)


async def test_unsubscribe_page_then_confirm(live, seeded_sqlite) -> None:
    s = seeded_sqlite
    path = f"/u/{s.token(Kind.UNSUBSCRIBE)}"
    async with httpx.AsyncClient(base_url=live.base) as http:
        page = await http.get(path)
        assert page.status_code == 200 and "<form method=post>" in page.text
        assert "<script" not in page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert live.actions.unsubscribed == []  # looking is not unsubscribing
        done = await http.post(path, data={"nonce": _nonce(page.text)})
    assert done.status_code == 200 and "unsubscribed" in done.text
    [token] = live.actions.unsubscribed
    assert (token.lead_id, token.company_id) == (s.lead_id, s.company_id)
    [hit] = await s.hits()
    assert (hit["kind"], hit["method"]) == ("unsubscribe", "POST")


async def test_rfc8058_one_click_needs_no_nonce(live, seeded_sqlite) -> None:
    s = seeded_sqlite
    path = f"/u/{s.token(Kind.UNSUBSCRIBE)}"
    async with httpx.AsyncClient(base_url=live.base) as http:
        urlencoded = await http.post(
            path,
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        multipart = await http.post(path, files={"List-Unsubscribe": (None, "One-Click")})
    assert urlencoded.status_code == 200 and multipart.status_code == 200
    assert len(live.actions.unsubscribed) == 2


async def test_unsubscribe_refuses_forged_forms_and_tokens(live, seeded_sqlite) -> None:
    s = seeded_sqlite
    path = f"/u/{s.token(Kind.UNSUBSCRIBE)}"
    other = f"/u/{s.token(Kind.UNSUBSCRIBE, lead_id=s.lead_id + 1)}"
    async with httpx.AsyncClient(base_url=live.base) as http:
        no_nonce = await http.post(path, data={"confirm": "1"})
        page = await http.get(other)  # a nonce for another lead's token
        stolen = await http.post(path, data={"nonce": _nonce(page.text)})
        forged = await http.post(f"/u/{s.token(Kind.OPEN)}", content=b"List-Unsubscribe=One-Click")
        huge = await http.post(path, content=b"x=" + b"a" * 100_000)
    assert (no_nonce.status_code, stolen.status_code) == (403, 403)
    assert forged.status_code == 404 and huge.status_code == 413
    assert live.actions.unsubscribed == [] and await s.hits() == []


async def test_unsubscribe_while_the_database_is_down_says_try_again(live, seeded_sqlite) -> None:
    live.actions.fail = True
    async with httpx.AsyncClient(base_url=live.base) as http:
        r = await http.post(
            f"/u/{seeded_sqlite.token(Kind.UNSUBSCRIBE)}", content=b"List-Unsubscribe=One-Click"
        )
    assert r.status_code == 503 and "retry-after" in r.headers


async def test_forward_to_a_friend(live, seeded_sqlite) -> None:
    s = seeded_sqlite
    path = f"/f/{s.token(Kind.FORWARD)}"
    async with httpx.AsyncClient(base_url=live.base) as http:
        page = await http.get(path)
        assert page.status_code == 200 and "name=email type=email" in page.text
        r = await http.post(
            path,
            data={
                "nonce": _nonce(page.text),
                "email": "Bob@Example.COM",
                "name": "Bob",
                "note": "<b>look</b>",
            },
        )
    assert r.status_code == 200 and "Thank you" in r.text
    [(token, friend)] = live.actions.forwarded
    assert token.message_id == s.message_id and friend.email == "Bob@example.com"
    assert (friend.name, friend.note, friend.ip) == ("Bob", "<b>look</b>", "127.0.0.1")
    [hit] = await s.hits()
    assert (hit["kind"], hit["method"]) == ("forward", "POST")


async def test_forward_validates_the_email_and_escapes_it(live, seeded_sqlite) -> None:
    s = seeded_sqlite
    path = f"/f/{s.token(Kind.FORWARD)}"
    async with httpx.AsyncClient(base_url=live.base) as http:
        nonce = _nonce((await http.get(path)).text)
        r = await http.post(path, data={"nonce": nonce, "email": '"><script>x</script>'})
    assert r.status_code == 400 and "<script>" not in r.text and "&lt;script&gt;" in r.text
    assert live.actions.forwarded == []


async def test_forward_needs_our_form_nonce(live, seeded_sqlite) -> None:
    s = seeded_sqlite
    path = f"/f/{s.token(Kind.FORWARD)}"
    async with httpx.AsyncClient(base_url=live.base) as http:
        r = await http.post(path, data={"email": "bob@example.com", "nonce": "1.AAAA"})
    assert r.status_code == 403 and live.actions.forwarded == []


async def test_forward_is_limited_to_five_per_token_per_hour(live, seeded_sqlite) -> None:
    s = seeded_sqlite
    path = f"/f/{s.token(Kind.FORWARD)}"
    async with httpx.AsyncClient(base_url=live.base) as http:
        nonce = _nonce((await http.get(path)).text)
        codes = [
            (await http.post(path, data={"nonce": nonce, "email": f"f{i}@example.com"})).status_code
            for i in range(7)
        ]
    assert codes == [200] * 5 + [429] * 2
    assert len(live.actions.forwarded) == 5


async def test_forwards_recorded_by_other_workers_count_toward_the_limit(
    live, seeded_sqlite
) -> None:
    s = seeded_sqlite
    path = f"/f/{s.token(Kind.FORWARD)}"
    live.actions.recorded_forwards = 4
    async with httpx.AsyncClient(base_url=live.base) as http:
        nonce = _nonce((await http.get(path)).text)
        first = await http.post(path, data={"nonce": nonce, "email": "a@example.com"})
        live.actions.recorded_forwards = 5  # the forward just made, as the hits now show
        second = await http.post(path, data={"nonce": nonce, "email": "b@example.com"})
    assert (first.status_code, second.status_code) == (200, 429)
    assert second.headers["retry-after"] == "3600" and len(live.actions.forwarded) == 1


def test_form_nonce_is_bound_to_its_token_and_expires() -> None:
    nonce = FormNonce(b"secret", ttl_s=3600)
    issued = nonce.issue("t1.abc", now=1_000_000)
    assert nonce.check("t1.abc", issued, now=1_000_100)
    assert not nonce.check("t1.abd", issued, now=1_000_100)
    assert not nonce.check("t1.abc", issued, now=1_000_000 + 3601)
    assert not FormNonce(b"other").check("t1.abc", issued, now=1_000_100)
    for junk in ("", ".", "x.y", "99999999999999.AAAA", issued + "A"):
        assert not nonce.check("t1.abc", junk, now=1_000_100)


@pytest.mark.parametrize("limit", [1, 5])
def test_rate_limit_gives_back_failed_attempts(limit: int) -> None:
    rl = RateLimit(limit, 3600)
    assert all(rl.take((1, 1)) for _ in range(limit))
    assert not rl.take((1, 1)) and rl.take((1, 2))
    rl.give_back((1, 1))
    assert rl.take((1, 1))


async def test_recorded_forwards_are_counted_from_the_hits_table(seeded, db_url: str) -> None:
    s = seeded
    ids = {"company_id": s.company_id, "message_id": s.message_id, "lead_id": s.lead_id}
    db = Database.unpooled(db_url)
    async with db.begin() as conn:
        for age_s, kind in ((60, "forward"), (1800, "forward"), (7200, "forward"), (5, "open")):
            at = now() - dt.timedelta(seconds=age_s)
            await conn.execute(insert(hits).values(at=at, kind=kind, method="POST", **ids))
    await db.dispose()
    svc = Services.build(Settings(database_url=db_url, secret_keys=(("t1", b"forms-test"),)))
    try:
        token = Token(Kind.FORWARD, **ids)
        assert await EdgeActions(svc).forwards_since(token, 3600) == 2  # not older, not opens
        other = Token(Kind.FORWARD, s.company_id, s.message_id, s.lead_id + 1000)
        assert await EdgeActions(svc).forwards_since(other, 3600) == 0
    finally:
        await svc.db.dispose()
