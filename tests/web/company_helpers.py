"""The settings tests' extra people: the known mix has a marketing manager and a
salesperson; the company's settings also need an administrator and a company manager."""

from __future__ import annotations

from dashboard_helpers import Site

from mailbeacon.crm.users import create_api_key, create_user
from mailbeacon.store import Database

MANAGERS = ("administrator", "company_manager")


async def add_managers(site: Site) -> dict[str, str]:
    """Add the administrator and company manager (they log in with `site.email(role)`
    and `site.password`); an API key for every role of the site."""
    db = Database.unpooled(site.settings.database_url)
    try:
        async with db.begin() as conn:
            for role in MANAGERS:
                site.world.users[role] = await create_user(
                    conn,
                    company_id=site.world.company_id,
                    email=site.email(role),
                    role=role,
                    password=site.password,
                )
            return {role: await create_api_key(conn, uid) for role, uid in site.world.users.items()}
    finally:
        await db.dispose()
