"""The scenarios users see, end to end: hits through the real edge, the enrich stage
running in the app, events read back through the public API."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mailbeacon.app import create_app
from mailbeacon.crm.companies import create_company
from mailbeacon.crm.users import create_api_key, create_user
from mailbeacon.settings import Settings
from mailbeacon.store import Database
from mailbeacon.tokens import Kind, Signer, Token

OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)"
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0"
GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
HTML = "".join(f'<p><a href="https://example.com/{p}">{p}</a></p>' for p in ("a", "b", "c"))


async def _lifespan(app: Any, stop: asyncio.Event, started: asyncio.Event) -> None:
    """Drive the ASGI lifespan (httpx's transport does not): starts recorder and stages."""
    messages = iter([{"type": "lifespan.startup"}])

    async def receive() -> dict[str, str]:
        try:
            return next(messages)
        except StopIteration:
            await stop.wait()
            return {"type": "lifespan.shutdown"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)


class Reader:
    def __init__(self, client: httpx.AsyncClient, signer: Signer, sent: dict[str, Any]) -> None:
        self.client, self.signer, self.sent = client, signer, sent

    def _token(self, kind: Kind, link_index: int = 0) -> str:
        ids = {k: self.sent[k] for k in ("company_id", "lead_id")}
        token = Token(kind, message_id=self.sent["id"], link_index=link_index, **ids)
        return self.signer.sign(token)

    async def open(self, ip: str, ua: str) -> None:
        headers = {"user-agent": ua, "x-forwarded-for": ip}
        r = await self.client.get(f"/o/{self._token(Kind.OPEN)}.gif", headers=headers)
        assert r.status_code == 200

    async def click(self, ip: str, ua: str, index: int) -> None:
        headers = {"user-agent": ua, "x-forwarded-for": ip}
        r = await self.client.get(f"/c/{self._token(Kind.CLICK, index)}", headers=headers)
        assert r.status_code == 302, r.text

    async def events(self, count: int, within: float = 6.0) -> list[dict[str, Any]]:
        url = f"/api/v1/messages/{self.sent['id']}/events"
        for _ in range(int(within / 0.1)):
            events = (await self.client.get(url)).json()
            if len(events) >= count:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # nothing more should come
        return (await self.client.get(url)).json()  # type: ignore[no-any-return]


@pytest.fixture
async def reader(settings: Settings) -> AsyncIterator[Reader]:
    settings = settings.with_(trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),))
    db = Database(settings.database_url)
    async with db.begin() as conn:
        company = await create_company(conn, "Acme", "essential")
        user = await create_user(
            conn,
            company_id=company,
            email="mm@acme.example.com",
            role="marketing_manager",
            password="correct horse battery",
        )
        key = await create_api_key(conn, user)
    await db.dispose()
    app = create_app(settings, run_stages=True)
    stop, started = asyncio.Event(), asyncio.Event()
    life = asyncio.create_task(_lifespan(app, stop, started))
    await asyncio.wait_for(started.wait(), 10)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://mailbeacon.test", headers=headers
    ) as client:
        lead = (await client.post("/api/v1/leads", json={"email": "ada@example.com"})).json()
        body = {"lead_id": lead["id"], "subject": "Hi", "html": HTML, "send": False}
        r = await client.post("/api/v1/messages", json=body)
        assert r.status_code == 201, r.text
        sent = r.json() | {"company_id": company}
        sent["link_indexes"] = [
            k["index"] for k in sent["links"] if k.get("kind", "link") == "link"
        ]
        yield Reader(client, Signer(settings.secret_keys), sent)
    stop.set()
    await asyncio.wait_for(life, 10)


def pick(events: list[dict[str, Any]], *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(e[k] for k in keys) for e in events]


async def test_forwarded_reader_through_the_api(reader: Reader) -> None:
    await reader.open("81.2.69.160", OUTLOOK)
    await reader.open("8.8.8.8", THUNDERBIRD)
    events = await reader.events(2)
    assert pick(events, "type", "verdict", "forwarded", "client", "country") == [
        ("open", "human", False, "Outlook", "GB"),
        ("open", "human", True, "Thunderbird", "US"),
    ]


async def test_proxy_refetches_are_one_open_through_the_api(reader: Reader) -> None:
    for _ in range(3):
        await reader.open("66.249.84.12", GMAIL)
    events = await reader.events(1)
    assert pick(events, "type", "verdict", "client", "country") == [
        ("open", "proxy", "Gmail", None)
    ]
    message = (await reader.client.get(f"/api/v1/messages/{reader.sent['id']}")).json()
    assert message["hits"]["open"] == 3  # raw hits keep every fetch


async def test_click_without_open_infers_one_within_two_seconds(reader: Reader) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await reader.click("81.2.69.160", CHROME, reader.sent["link_indexes"][0])
    events = await reader.events(2)
    assert pick(events, "type", "verdict", "inferred") == [
        ("open", "human", True),
        ("click", "human", False),
    ]
    assert events[1]["url"] == "https://example.com/a"
    assert loop.time() - started < 6.0  # 1.5 s hold; the margin is for a loaded CI machine


async def test_scanner_burst_through_the_api(reader: Reader) -> None:
    for index in reader.sent["link_indexes"]:
        await reader.click("81.2.69.160", CHROME, index)
    events = await reader.events(3)
    assert pick(events, "type", "verdict", "inferred") == [("click", "scanner", False)] * 3
    assert re.search(r"3 links clicked within 2 s", events[0]["reason"])


IPHONE_MAIL = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)


async def test_events_carry_the_device_type_and_model_and_the_report_groups_by_type(
    reader: Reader,
) -> None:
    """Four leads of one campaign open: Outlook on Windows and Thunderbird on Linux
    (desktops, no model), Mail on an iPhone, and one through Gmail's proxy (hidden)."""
    api = reader.client
    lst = (await api.post("/api/v1/lists", json={"name": "Devices"})).json()
    body = {"name": "Devices", "subject": "Hi", "list_id": lst["id"], "html": HTML}
    campaign = (await api.post("/api/v1/campaigns", json=body)).json()
    readers = {}
    for name, ip, ua in (
        ("win", "81.2.69.160", OUTLOOK),
        ("linux", "85.214.1.1", THUNDERBIRD),
        ("phone", "92.40.11.3", IPHONE_MAIL),
        ("gmail", "66.249.84.12", GMAIL),
    ):
        lead = (await api.post("/api/v1/leads", json={"email": f"{name}@example.com"})).json()
        msg = {"lead_id": lead["id"], "subject": "Hi", "html": HTML, "send": False}
        r = await api.post("/api/v1/messages", json=msg | {"campaign_id": campaign["id"]})
        assert r.status_code == 201, r.text
        sent = r.json() | {"company_id": reader.sent["company_id"]}
        readers[name] = Reader(api, reader.signer, sent)
        await readers[name].open(ip, ua)
    phone = await readers["phone"].events(1)
    fields = ("type", "verdict", "client", "device", "device_model", "os")
    assert pick(phone, *fields) == [("open", "human", "Apple Mail", "mobile", "iPhone", "iOS")]
    assert pick(await readers["win"].events(1), *fields) == [
        ("open", "human", "Outlook", "desktop", None, "Windows")
    ]
    assert pick(await readers["gmail"].events(1), *fields) == [
        ("open", "proxy", "Gmail", None, None, None)
    ]
    lead_id = readers["phone"].sent["lead_id"]
    activity = (await api.get(f"/api/v1/leads/{lead_id}/activity")).json()
    assert pick(activity, "device", "device_model") == [("mobile", "iPhone")]
    url = f"/api/v1/campaigns/{campaign['id']}/report"
    for _ in range(60):  # the rollups stage follows the events within a poll or two
        report = (await api.get(url)).json()
        if sum(report["by_device"].values()) >= 4:
            break
        await asyncio.sleep(0.1)
    assert report["by_device"] == {"desktop": 2, "mobile": 1, "unknown": 1}
