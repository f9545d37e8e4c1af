"""Logging in the way a browser does: the login page's CSRF cookie, then the form."""

from __future__ import annotations

import re

import httpx


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
