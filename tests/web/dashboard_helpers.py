"""The dashboard tests' shared pieces: the site they run on, and logging in the way a
browser does (the login page's CSRF cookie, then the form)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from mailbeacon.settings import Settings
from testkit.sample import World

PASSWORD = "correct horse battery"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
# Starts the site's server with some settings changed; the base URL comes back.
Serve = Callable[..., Awaitable[str]]


@dataclass
class Site:
    world: World
    settings: Settings
    password: str = PASSWORD

    def email(self, role: str) -> str:
        return f"{role}.{self.world.company_id}@acme.example"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def login(
    client: httpx.AsyncClient, email: str, password: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    page = await client.get("/login", headers=headers)
    form = {"email": email, "password": password, "csrf": _csrf(page.text), "next": "/campaigns"}
    return await client.post("/login", data=form, headers=headers)


async def logout(client: httpx.AsyncClient) -> httpx.Response:
    page = await client.get("/campaigns")
    return await client.post("/logout", data={"csrf": _csrf(page.text)})
