"""A webhook URL never leads the server into its own network (SSRF)."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from automation_harness import World, eventually, free_port, seed, wait_for
from serve import TEST_KEYS
from sqlalchemy import select

from mailbeacon.app import create_app
from mailbeacon.automation import rules as store
from mailbeacon.automation.actions import Context
from mailbeacon.automation.model import RuleIn
from mailbeacon.automation.ssrf import literal_private, private_address
from mailbeacon.automation.webhooks import deliver
from mailbeacon.crm.users import Principal
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


# Every form of an address that reaches 127.0.0.1 or the metadata service (or carries
# them), as a customer could type it; PORT is a loopback receiver that must hear nothing.
INSIDE_FORMS = [
    ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),  # IPv4-mapped
    ("[::127.0.0.1]", "::7f00:1"),  # IPv4-compatible (deprecated, still parsed)
    ("[64:ff9b::7f00:1]", "64:ff9b::7f00:1"),  # NAT64, well-known prefix
    ("[64:ff9b::a9fe:a9fe]", "64:ff9b::a9fe:a9fe"),  # NAT64 to 169.254.169.254
    ("[64:ff9b:1::7f00:1]", "64:ff9b:1::7f00:1"),  # NAT64, local-use prefix
    ("[2002:7f00:1::1]", "2002:7f00:1::1"),  # 6to4 carrying 127.0.0.1
    ("[2002:a9fe:a9fe::1]", "2002:a9fe:a9fe::1"),  # 6to4 carrying the metadata service
    ("[2001:0:4136:e378:8000:63bf:80ff:fffe]", "2001:0:4136:e378:8000:63bf:80ff:fffe"),  # Teredo
    ("2130706433", "127.0.0.1"),  # decimal
    ("0x7f000001", "127.0.0.1"),  # hex
    ("0x7f.1", "127.0.0.1"),  # hex, short form
    ("017700000001", "127.0.0.1"),  # octal
    ("0177.0.0.1", "127.0.0.1"),  # octal, dotted
    ("127.1", "127.0.0.1"),  # short dotted
    ("0251.0376.0251.0376", "169.254.169.254"),
]
# The same embeddings carrying a public IPv4 address are public.
PUBLIC_FORMS = ["[64:ff9b::808:808]", "[2002:808:808::1]", "[::ffff:8.8.8.8]", "8.8.8.8"]


@pytest.mark.parametrize("host,inside", INSIDE_FORMS)
async def test_every_spelling_of_an_inside_address_is_found(host: str, inside: str) -> None:
    url = f"http://{host}:9/hook"
    assert await private_address(url) == inside
    assert literal_private(url) == inside  # the same, without DNS, for the API's check


@pytest.mark.parametrize("host", PUBLIC_FORMS)
async def test_embeddings_of_a_public_address_stay_public(host: str) -> None:
    assert literal_private(f"http://{host}/hook") is None
    assert await private_address(f"http://{host}/hook") is None


def test_a_host_name_is_left_to_delivery_time() -> None:
    assert literal_private("http://localhost:9/hook") is None  # resolved when sent


@dataclass(frozen=True)
class Guarded(Settings):
    """As production runs: private webhooks refused; the automation stage quick."""

    webhook_allow_private: bool = False
    automation_webhook_attempts: int = 1
    automation_webhook_timeout: float = 2.0
    automation_lease_ttl: float = 1.5


@contextmanager
def live(settings: Settings) -> Iterator[str]:
    """The whole app (API and pipeline stages) on a real socket, in a thread of its own."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 20, "the server to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _receiver() -> tuple[socketserver.TCPServer, list[bytes]]:
    heard: list[bytes] = []

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            heard.append(self.request.recv(1024))

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, heard


async def test_the_api_refuses_and_delivery_refuses_every_inside_form(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Through the running server: POST and PATCH /api/v1/rules answer 422 naming the
    field for each form; rules that got stored anyway (before this check, or by the
    dashboard) are refused when they fire, logged, and the receiver hears nothing."""
    db = Database(sqlite_url)
    company, key, owner, owner_email, campaign, _ = await seed(db)
    receiver, heard = _receiver()
    port = receiver.server_address[1]
    settings = Guarded(database_url=sqlite_url, secret_keys=TEST_KEYS, var_dir=tmp_path / "var")
    try:
        with (
            live(settings) as url,
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as api,
        ):
            rule = {"name": "hook", "trigger": {"type": "opened"}, "actions": []}
            for host, inside in INSIDE_FORMS:
                hook = {"type": "webhook", "url": f"http://{host}:{port}/x", "secret": "s" * 8}
                answer = api.post("/api/v1/rules", json={**rule, "actions": [hook]})
                assert answer.status_code == 422, (host, answer.text)
                error = answer.json()["error"]
                assert error["field"] == "actions.0.webhook.url"
                assert error["message"].endswith(f"leads to a non-public address ({inside})")
            for host in PUBLIC_FORMS:
                hook = {"type": "webhook", "url": f"https://{host}/x", "secret": "s" * 8}
                created = api.post("/api/v1/rules", json={**rule, "actions": [hook]})
                assert created.status_code == 201, (host, created.text)
                hook["url"] = f"http://[::127.0.0.1]:{port}/x"
                patch = {"actions": [{"type": "add_score", "points": 1}, hook]}
                changed = api.patch(f"/api/v1/rules/{created.json()['id']}", json=patch)
                assert changed.status_code == 422
                assert changed.json()["error"]["field"] == "actions.1.webhook.url"
                assert api.delete(f"/api/v1/rules/{created.json()['id']}").status_code == 204

            # Stored past the API, each form fires on one open and is refused at delivery.
            who = Principal(
                user_id=owner, company_id=company, role="salesperson", plan="ultimate",
                email=owner_email,
            )  # fmt: skip
            async with db.begin() as conn:
                for host, _ in INSIDE_FORMS:
                    hook = {"type": "webhook", "url": f"http://{host}:{port}/x", "secret": "s" * 8}
                    await store.create_rule(conn, who, RuleIn(**{**rule, "actions": [hook]}))
            world = World(db, api, company, owner, "", "", campaign)
            lead = await world.lead("lee@lead.test")
            await world.event(await world.message(lead), lead)

            async def logged() -> list[dict[str, object]]:
                async with db.connect() as conn:
                    rows = (await conn.execute(select(webhook_deliveries))).mappings().all()
                return [dict(r) for r in rows] if len(rows) == len(INSIDE_FORMS) else []

            deliveries = await eventually(logged, 30, "every webhook to be refused")
    finally:
        receiver.shutdown()
        receiver.server_close()
        await db.dispose()
    refused = {str(d["url"]).split("//", 1)[1].rsplit(":", 1)[0]: d["error"] for d in deliveries}
    assert refused == {
        host: f"refused: the URL leads to a non-public address ({inside})"
        for host, inside in INSIDE_FORMS
    }
    assert all(d["final"] and not d["ok"] and d["status_code"] is None for d in deliveries)
    assert heard == []
