"""The spine's fixtures: the API app over ASGI and a way to make companies and users."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from spine_helpers import Accounts

from mailbeacon.app import create_app
from mailbeacon.settings import Settings
from mailbeacon.store import Database


@pytest.fixture
async def accounts(db: Database) -> Accounts:
    return Accounts(db)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, run_stages=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mailbeacon.test") as client:
        yield client
