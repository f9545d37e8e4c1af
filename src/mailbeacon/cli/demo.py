"""`make run`: everything a newcomer needs to see a first tracked open, on one machine.

Migrates the SQLite database in ./var, creates the demo company and its administrator
(login and API key printed once; re-running finds them and prints nothing secret),
starts a local SMTP outbox, sends a welcome campaign into it, and serves.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket

import typer

from mailbeacon.cli.common import DATABASE, signing_settings
from mailbeacon.cli.serving import serve_all
from mailbeacon.crm.campaigns import create_campaign
from mailbeacon.crm.companies import create_company, find_company_by_name
from mailbeacon.crm.leads import create_lead
from mailbeacon.crm.lists import add_leads, create_list
from mailbeacon.crm.users import create_api_key, create_user, get_principal
from mailbeacon.delivery import send_campaign, start_outbox
from mailbeacon.settings import Settings
from mailbeacon.store import Database
from mailbeacon.store.migrate import upgrade
from mailbeacon.tokens import Signer

DEMO_COMPANY = "Demo company"
DEMO_ADMIN = "admin@mailbeacon.test"
WELCOME_HTML = """<html><body style="font-family:sans-serif">
<h1>Hello {{first_name}}!</h1>
<p>This is your first tracked email. Opening it loaded a 1x1 pixel; this
<a href="https://example.com/pricing">link to our pricing</a> goes through mailbeacon too.</p>
</body></html>"""


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


async def setup(settings: Settings) -> dict[str, str] | None:
    """Create the demo once; return the secrets to print, or None if it exists."""
    db = Database.unpooled(settings.database_url)
    try:
        await upgrade(db)
        async with db.begin() as conn:
            if await find_company_by_name(conn, DEMO_COMPANY) is not None:
                return None
            company_id = await create_company(conn, DEMO_COMPANY, "ultimate")
            password = secrets.token_urlsafe(12)
            user_id = await create_user(
                conn,
                company_id=company_id,
                email=DEMO_ADMIN,
                role="administrator",
                password=password,
                name="Demo administrator",
            )
            key = await create_api_key(conn, user_id)
            who = await get_principal(conn, user_id)
            assert who is not None
            lead = await create_lead(
                conn, who, email="you@example.com", first_name="Newcomer", timezone="UTC"
            )
            leads_list = await create_list(conn, who, "Newsletter")
            await add_leads(conn, who, leads_list["id"], [lead["id"]])
            campaign = await create_campaign(
                conn,
                who,
                name="Welcome",
                subject="Your first tracked email",
                html=WELCOME_HTML,
                list_id=leads_list["id"],
                utm={"source": "mailbeacon-demo"},
            )
        await send_campaign(db, settings, Signer(settings.secret_keys), company_id, campaign["id"])
        return {"email": DEMO_ADMIN, "password": password, "api_key": key}
    finally:
        await db.dispose()


def run(
    host: str = typer.Option("127.0.0.1", help="address to serve on"),
    port: int = typer.Option(8000, help="port to serve on"),
    smtp_port: int = typer.Option(8025, help="port of the local SMTP outbox"),
    database: str | None = DATABASE,
) -> None:
    settings = signing_settings(database)
    settings = settings.with_(smtp_url=f"smtp://127.0.0.1:{smtp_port}")
    outbox = None
    if _port_free("127.0.0.1", smtp_port):
        outbox = start_outbox("127.0.0.1", smtp_port, settings.var_dir / "outbox")
    created = asyncio.run(setup(settings))
    if created:
        typer.echo("Demo company created. Shown once; keep them:")
        typer.echo(f"  login     {created['email']}")
        typer.echo(f"  password  {created['password']}")
        typer.echo(f"  API key   {created['api_key']}")
    else:
        typer.echo(f"Demo company exists; log in as {DEMO_ADMIN} (password shown on first run).")
    typer.echo(f"Outbox: the welcome email is in {settings.var_dir / 'outbox'} and at /outbox.")
    typer.echo(f"Dashboard: {settings.base_url}/login")
    try:
        os.environ["MAILBEACON_SMTP_URL"] = settings.smtp_url
        serve_all(settings, host, port, 1, pipeline=True)
    finally:
        if outbox is not None:
            outbox.stop()
