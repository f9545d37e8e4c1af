"""Failed logins, counted per account and per address, and how long each must wait.

The counts live in the `login_failures` table, so every worker and machine sees the
same ones. A key (`account:<email>` or `address:<ip>`) may fail `limit` times within
`WINDOW`; then it is blocked, first for `FIRST_BLOCK`, doubling with each further
failure, never longer than `LONGEST_BLOCK`: a guesser gets a handful of tries per
quarter hour, and the real user waits at most a quarter hour. A successful login clears
its account's count (not its address's, or one known password would reset the count
of every account tried from there). While a key is blocked no password is checked.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.store.dialect import dialect_insert
from mailbeacon.store.schema import login_failures

ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20
WINDOW = dt.timedelta(minutes=15)
FIRST_BLOCK = dt.timedelta(seconds=30)
LONGEST_BLOCK = dt.timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Attempt:
    """Who is trying: the account named in the form and the address it came from."""

    email: str
    address: str | None

    @property
    def account_key(self) -> str:
        return "account:" + self.email.strip().lower()[:380]

    @property
    def address_key(self) -> str | None:
        if not self.address:
            return None
        try:
            ip = ipaddress.ip_address(self.address)
        except ValueError:
            return "address:" + self.address[:300]
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                return f"address:{ip.ipv4_mapped}"
            # One IPv6 subscriber holds a whole /64: count it as one address.
            return f"address:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
        return f"address:{ip}"

    def limits(self) -> list[tuple[str, int]]:
        keys = [(self.account_key, ACCOUNT_LIMIT)]
        if self.address_key:
            keys.append((self.address_key, ADDRESS_LIMIT))
        return keys


def block_for(failures: int, limit: int) -> dt.timedelta | None:
    """How long a key with `failures` in the window is blocked (None: not yet)."""
    if failures < limit:
        return None
    doublings = min(failures - limit, 16)  # the cap is reached long before; no huge powers
    return min(FIRST_BLOCK * 2**doublings, LONGEST_BLOCK)


def _seconds(until: dt.datetime, at: dt.datetime) -> int:
    return max(1, math.ceil((until - at).total_seconds()))


async def retry_after(conn: AsyncConnection, attempt: Attempt, at: dt.datetime) -> int | None:
    """Seconds until every key of the attempt may try again; None if it may now."""
    keys = [key for key, _ in attempt.limits()]
    rows = await conn.execute(
        select(login_failures.c.blocked_until).where(
            login_failures.c.key.in_(keys), login_failures.c.blocked_until > at
        )
    )
    until = [row.blocked_until for row in rows]
    return _seconds(max(until), at) if until else None


async def record_failure(conn: AsyncConnection, attempt: Attempt, at: dt.datetime) -> int | None:
    """Count one failure against each key; the seconds to wait if that blocked one."""
    waits = []
    for key, limit in attempt.limits():
        failures = await _count(conn, key, at)
        block = block_for(failures, limit)
        if block is not None:
            await conn.execute(
                update(login_failures)
                .where(login_failures.c.key == key)
                .values(blocked_until=at + block)
            )
            waits.append(_seconds(at + block, at))
    return max(waits) if waits else None


async def _count(conn: AsyncConnection, key: str, at: dt.datetime) -> int:
    """Add one failure to the key (a fresh count once its window has passed)."""
    stale = login_failures.c.first_at < at - WINDOW
    not_blocked = login_failures.c.blocked_until.is_(None) | (login_failures.c.blocked_until <= at)
    await conn.execute(
        update(login_failures)
        .where(login_failures.c.key == key, stale, not_blocked)
        .values(failures=0, first_at=at, blocked_until=None)
    )
    # One statement adds the failure whether or not the key had a row: workers race here.
    insert = dialect_insert(conn, login_failures).values(
        key=key, failures=1, first_at=at, blocked_until=None
    )
    await conn.execute(
        insert.on_conflict_do_update(
            index_elements=[login_failures.c.key],
            set_={"failures": login_failures.c.failures + 1},
        )
    )
    row = await conn.execute(select(login_failures.c.failures).where(login_failures.c.key == key))
    return int(row.scalar_one())


async def record_success(conn: AsyncConnection, attempt: Attempt) -> None:
    await conn.execute(delete(login_failures).where(login_failures.c.key == attempt.account_key))
