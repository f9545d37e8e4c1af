"""A webhook URL never leads the server into its own network (SSRF)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from mailbeacon.automation.actions import Context
from mailbeacon.automation.ssrf import private_address
from mailbeacon.automation.webhooks import deliver
from mailbeacon.settings import Settings
from mailbeacon.store import Database
from mailbeacon.store.schema_automation import webhook_deliveries
from mailbeacon.tokens import Signer


@pytest.mark.parametrize(
    "url,inside",
    [
        ("http://127.0.0.1:9/hook", "127.0.0.1"),
        ("http://localhost:9/hook", None),  # resolves to loopback: checked below
        ("http://10.1.2.3/hook", "10.1.2.3"),
        ("http://192.168.0.10/hook", "192.168.0.10"),
        ("http://172.16.5.5/hook", "172.16.5.5"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://100.64.0.1/hook", "100.64.0.1"),
        ("http://0.0.0.0/hook", "0.0.0.0"),
        ("http://[::1]/hook", "::1"),
        ("http://[fd00::1]/hook", "fd00::1"),
        ("http://[::ffff:127.0.0.1]/hook", "::ffff:7f00:1"),
        ("https://93.184.215.14/hook", None),
        ("https://[2606:4700:4700::1111]/hook", None),
    ],
)
async def test_private_addresses_are_found(url: str, inside: str | None) -> None:
    found = await private_address(url)
    if "localhost" in url:
        assert found in ("127.0.0.1", "::1")
    else:
        assert found == inside


async def test_a_host_that_does_not_resolve_is_refused() -> None:
    assert "does not resolve" in (await private_address("http://no-such-host.invalid/x") or "")


async def test_a_webhook_to_the_metadata_service_is_refused_and_logged(db: Database) -> None:
    job = {
        "id": 1, "rule_id": 2, "company_id": 3, "lead_id": 4, "attempts": 1,
        "trigger": {"type": "open"},
        "action": {"type": "webhook", "url": "http://169.254.169.254/latest/", "secret": "s"},
    }  # fmt: skip
    async with httpx.AsyncClient() as http:
        ctx = Context(
            db=db, settings=Settings(database_url=db.url), signer=Signer((("k", b"s"),)),
            transport=None, http=http,  # type: ignore[arg-type]
        )  # fmt: skip
        outcome = await deliver(ctx, job, attempts=5, backoff=0.1)
    assert outcome.status == "failed" and "169.254.169.254" in outcome.result
    async with db.connect() as conn:
        logged = (await conn.execute(select(webhook_deliveries))).mappings().one()
    assert logged["final"] and not logged["ok"] and logged["status_code"] is None
