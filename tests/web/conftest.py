"""Dashboard fixtures: the known-mix campaign with users who can log in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from mailbeacon.analytics import rollups
from mailbeacon.analytics.sample import World, known_mix
from mailbeacon.app import create_app
from mailbeacon.settings import Settings
from mailbeacon.store import Database

PASSWORD = "correct horse battery"


@dataclass
class Site:
    world: World
    settings: Settings
    password: str = PASSWORD

    def email(self, role: str) -> str:
        return f"{role}.{self.world.company_id}@acme.example"


@pytest.fixture
async def site(settings: Settings) -> Site:
    db = Database(settings.database_url)
    try:
        async with db.begin() as conn:
            world = await known_mix(conn, password=PASSWORD)
        await rollups.catch_up(db)
    finally:
        await db.dispose()
    return Site(world=world, settings=settings)


@pytest.fixture
async def client(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(site.settings, run_stages=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
