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


async def test_a_rebinding_host_is_refused_at_connect_time(db: Database, monkeypatch) -> None:
    """DNS rebinding: the check is told "public", the connection a moment later would go
    to loopback. A real receiver listens there and must hear nothing."""
    import asyncio

    from mailbeacon.automation import webhooks
    from mailbeacon.automation.ssrf import public_only_transport

    heard: list[bytes] = []

    async def receiver(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heard.append(await reader.read(1024))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(receiver, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def says_public(url: str) -> None:  # what a rebinding DNS answers the check
        return None

    monkeypatch.setattr(webhooks, "private_address", says_public)
    job = {
        "id": 1, "rule_id": 2, "company_id": 3, "lead_id": 4, "attempts": 5,
        "trigger": {"type": "open"},
        "action": {"type": "webhook", "url": f"http://localhost:{port}/hook", "secret": "s"},
    }  # fmt: skip
    async with server, httpx.AsyncClient(transport=public_only_transport()) as http:
        ctx = Context(
            db=db, settings=Settings(database_url=db.url), signer=Signer((("k", b"s"),)),
            transport=None, http=http,  # type: ignore[arg-type]
        )  # fmt: skip
        outcome = await deliver(ctx, job, attempts=5, backoff=0.1)
    assert heard == []
    assert outcome.status == "failed" and "non-public address" in outcome.result
    # a TEST-NET address (not global) is cut off the same way, with no DNS involved
    async with httpx.AsyncClient(transport=public_only_transport(), timeout=0.5) as http:
        with pytest.raises(httpx.ConnectError, match="non-public"):
            await http.get("http://192.0.2.1:9/")


async def test_public_addresses_are_connected_by_the_address_that_was_checked() -> None:
    import httpcore

    from mailbeacon.automation.ssrf import PublicOnlyBackend

    class Recording(httpcore.AsyncMockBackend):
        hosts: list[str] = []

        async def connect_tcp(self, host: str, port: int, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.hosts.append(host)
            return await super().connect_tcp(host, port, *args, **kwargs)

    inner = Recording([b"HTTP/1.1 204 No Content\r\n\r\n"])
    pool = httpcore.AsyncConnectionPool(network_backend=PublicOnlyBackend(inner))
    response = await pool.request("POST", "http://93.184.215.14:8080/hook")
    assert response.status == 204 and inner.hosts == ["93.184.215.14"]
