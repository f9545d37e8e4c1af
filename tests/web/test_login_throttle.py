"""Guessing passwords at `POST /login`: five misses block the account, twenty block the
address, each with 429 and `Retry-After`; the wait is bounded and a success clears it.
Through the real server, on both engines (the counts live in `login_failures`)."""

from __future__ import annotations

import datetime as dt
import ipaddress

import httpx
import pytest
from dashboard_helpers import Serve, Site, login
from sqlalchemy import select, update

from mailbeacon.api.throttle import Attempt, block_for
from mailbeacon.store import Database, now
from mailbeacon.store.schema import login_failures


async def _rows(site: Site) -> dict[str, tuple[int, dt.datetime | None]]:
    db = Database.unpooled(site.settings.database_url)
    try:
        async with db.connect() as conn:
            rows = await conn.execute(select(login_failures))
            return {r.key: (r.failures, r.blocked_until) for r in rows}
    finally:
        await db.dispose()


async def _unblock(site: Site) -> None:
    """The block has run out (as if its seconds had passed)."""
    db = Database.unpooled(site.settings.database_url)
    try:
        async with db.begin() as conn:
            await conn.execute(
                update(login_failures).values(blocked_until=now() - dt.timedelta(seconds=1))
            )
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("address", "key"),
    [("127.0.0.1", "address:127.0.0.1"), ("::ffff:203.0.113.9", "address:203.0.113.9"),
     ("2001:db8:1:2:aaaa::1", "address:2001:db8:1:2::/64"),
     ("2001:db8:1:2:ffff::9", "address:2001:db8:1:2::/64"), (None, None)],
)  # fmt: skip
def test_an_ipv6_subscriber_counts_as_one_address(address: str | None, key: str | None) -> None:
    assert Attempt("Ann@Acme.example ", address).address_key == key
    assert Attempt("Ann@Acme.example ", address).account_key == "account:ann@acme.example"


@pytest.mark.parametrize(
    ("failures", "limit", "seconds"),
    [(4, 5, None), (5, 5, 30), (6, 5, 60), (8, 5, 240), (9, 5, 480), (10, 5, 900),
     (10_000, 5, 900), (19, 20, None), (20, 20, 30), (21, 20, 60)],
)  # fmt: skip
def test_the_wait_doubles_and_never_passes_a_quarter_hour(
    failures: int, limit: int, seconds: int | None
) -> None:
    block = block_for(failures, limit)
    assert (block.total_seconds() if block else None) == seconds


async def test_a_hundred_guesses_meet_429_after_five_and_the_owner_gets_in_after_the_wait(
    site: Site, served: str
) -> None:
    email = site.email("marketing_manager")
    async with httpx.AsyncClient(base_url=served, timeout=10) as client:
        answers = [await login(client, email, f"guess-{i}") for i in range(100)]
        statuses = [a.status_code for a in answers]
        assert statuses == [303] * 4 + [429] * 96
        missed = "/login?error=1&next=/campaigns"
        assert [a.headers["location"] for a in answers[:4]] == [missed] * 4
        assert answers[4].headers["retry-after"] == "30"
        assert 1 <= int(answers[-1].headers["retry-after"]) <= 30
        assert "Too many failed logins" in answers[-1].text
        # The right password waits like any other while the account is blocked.
        right = await login(client, email, site.password)
        assert right.status_code == 429 and "mb_session" not in right.cookies

        await _unblock(site)
        right = await login(client, email, site.password)
        assert (right.status_code, right.headers["location"]) == (303, "/campaigns")
        assert (await client.get("/campaigns")).status_code == 200
    # Blocked tries checked no password; the count stopped at the block.
    assert (await _rows(site))["address:127.0.0.1"][0] == 5
    assert f"account:{email}" not in await _rows(site)  # the success cleared it


async def test_a_success_clears_the_account_and_a_new_miss_after_the_wait_doubles_it(
    site: Site, served: str
) -> None:
    email = site.email("salesperson")
    async with httpx.AsyncClient(base_url=served, timeout=10) as client:
        for _ in range(4):
            assert (await login(client, email, "wrong password")).status_code == 303
        assert (await login(client, email, site.password)).status_code == 303
        async with httpx.AsyncClient(base_url=served, timeout=10) as other:
            # Four more misses: the count started again from nothing.
            statuses = [(await login(other, email, "wrong")).status_code for _ in range(5)]
            assert statuses == [303, 303, 303, 303, 429]
            await _unblock(site)
            again = await login(other, email, "wrong")  # one more miss after the wait
            assert (again.status_code, again.headers["retry-after"]) == (429, "60")
    failures, until = (await _rows(site))[f"account:{email}"]
    assert failures == 6 and until is not None


async def test_twenty_misses_from_one_address_block_every_account_from_it(
    site: Site, served: str
) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=10) as client:
        statuses = [
            (await login(client, f"nobody{i}@acme.example", "wrong")).status_code for i in range(20)
        ]
        assert statuses == [303] * 19 + [429]
        right = await login(client, site.email("marketing_manager"), site.password)
        assert right.status_code == 429
        assert 1 <= int(right.headers["retry-after"]) <= 30


async def test_behind_a_trusted_proxy_the_address_is_the_forwarded_one(
    site: Site, serve_site: Serve
) -> None:
    base = await serve_site(trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),))
    guesser = {"X-Forwarded-For": "203.0.113.9"}
    owner = {"X-Forwarded-For": "198.51.100.4"}
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for i in range(20):
            await login(client, f"nobody{i}@acme.example", "wrong", headers=guesser)
        blocked = await login(client, site.email("marketing_manager"), site.password, guesser)
        assert blocked.status_code == 429
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        fine = await login(client, site.email("marketing_manager"), site.password, owner)
        assert fine.status_code == 303
    rows = await _rows(site)
    assert rows["address:203.0.113.9"][0] == 20 and "address:198.51.100.4" not in rows
