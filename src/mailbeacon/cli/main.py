"""`mailbeacon`: serve, migrate, companies and users, reports, enrichment, the demo."""

from __future__ import annotations

import typer
from sqlalchemy.exc import DBAPIError

from mailbeacon.cli import demo, users
from mailbeacon.cli.campaigns import campaign_app
from mailbeacon.cli.common import DATABASE, JSON, database_url, emit, run_db, signing_settings
from mailbeacon.cli.enrich import enrich_app, geo_app
from mailbeacon.cli.leads import lead_app
from mailbeacon.cli.lists import list_app
from mailbeacon.cli.passwords import password_command
from mailbeacon.cli.report import report_app
from mailbeacon.cli.serving import serve_all
from mailbeacon.crm.access import Plan, Role
from mailbeacon.crm.companies import create_company
from mailbeacon.crm.users import create_api_key, create_user, revoke_api_key
from mailbeacon.pipeline.process import run_pipeline
from mailbeacon.store.migrate import upgrade, upgrade_sync

app = typer.Typer(
    help="mailbeacon: email engagement tracking for a lead-generation CRM.",
    no_args_is_help=True,
    add_completion=False,
)
company_app = typer.Typer(help="Companies (tenants) and their plans.", no_args_is_help=True)
user_app = typer.Typer(help="Users, roles and API keys.", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(company_app, name="company")
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")
app.add_typer(campaign_app, name="campaign")
app.add_typer(lead_app, name="lead")
app.add_typer(list_app, name="list")
user_app.command("password")(password_command)
user_app.command("list")(users.list_command)
user_app.command("deactivate")(users.deactivate_command)
user_app.command("activate")(users.activate_command)
user_app.command("role")(users.role_command)
app.add_typer(report_app, name="report")
app.add_typer(enrich_app)
app.add_typer(geo_app, name="geo")
app.command("demo", help="`make run`: migrate, create the demo company, outbox, serve.")(demo.run)


@app.command()
def migrate(database: str | None = DATABASE) -> None:
    """Bring the schema up to date."""
    upgrade_sync(database_url(database))
    typer.echo("schema is up to date")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
    workers: int = typer.Option(1, min=1, max=64, metavar="N", help="HTTP worker processes"),
    pipeline: bool = typer.Option(
        True,
        help="also run the pipeline (enrich, rollups, rules, sends); "
        "--no-pipeline if `mailbeacon pipeline` runs elsewhere",
    ),
    database: str | None = DATABASE,
) -> None:
    """Migrate if needed, then serve the tracking edge, the API and the dashboard."""
    settings = signing_settings(database)
    try:
        upgrade_sync(settings.database_url)
    except (OSError, DBAPIError) as exc:
        if not settings.clustered:
            raise
        # An edge of the multi-machine mode answers hits through NATS alone.
        typer.echo(f"warning: database unreachable, not migrated ({exc})", err=True)
    serve_all(settings, host, port, workers, pipeline=pipeline)


@app.command("pipeline")
def pipeline_command(database: str | None = DATABASE) -> None:
    """Run only the pipeline stages (for servers started with `serve --no-pipeline`)."""
    settings = signing_settings(database)
    upgrade_sync(settings.database_url)
    run_pipeline(settings)


@company_app.command("create")
def company_create(
    name: str = typer.Argument(..., help="the company's name"),
    plan: Plan = typer.Option(
        ..., "--plan", metavar="PLAN", help="trial, essential, advanced or ultimate"
    ),
    as_json: bool = JSON,
    database: str | None = DATABASE,
) -> None:
    """Create a company on a plan; prints its id."""

    async def work(db):  # type: ignore[no-untyped-def]
        await upgrade(db)
        async with db.begin() as conn:
            return await create_company(conn, name, plan.value)

    company_id = run_db(database_url(database), work)
    emit({"id": company_id}, as_json, f"company {company_id} created on the {plan.value} plan")


@user_app.command("create")
def user_create(
    company: int = typer.Option(..., "--company", help="the company id"),
    email: str = typer.Option(..., "--email", help="login email"),
    role: Role = typer.Option(
        ...,
        "--role",
        metavar="ROLE",
        help="administrator, company_manager, marketing_manager, sales_manager, "
        "salesperson or jr_salesperson",
    ),
    password: str | None = typer.Option(None, "--password", help="dashboard password"),
    as_json: bool = JSON,
    database: str | None = DATABASE,
) -> None:
    """Create a user with an API key (shown once, stored hashed)."""

    async def work(db):  # type: ignore[no-untyped-def]
        await upgrade(db)
        async with db.begin() as conn:
            user_id = await create_user(
                conn, company_id=company, email=email, role=role.value, password=password
            )
            return user_id, await create_api_key(conn, user_id)

    user_id, key = run_db(database_url(database), work)
    emit(
        {"id": user_id, "api_key": key},
        as_json,
        f"user {user_id} created; API key (shown once): {key}",
    )


@key_app.command("create")
def key_create(
    user: int = typer.Option(..., "--user", help="the user id"),
    as_json: bool = JSON,
    database: str | None = DATABASE,
) -> None:
    """Issue another API key for a user (shown once)."""

    async def work(db):  # type: ignore[no-untyped-def]
        async with db.begin() as conn:
            return await create_api_key(conn, user)

    key = run_db(database_url(database), work)
    emit({"api_key": key}, as_json, f"API key (shown once): {key}")


@key_app.command("revoke")
def key_revoke(
    prefix: str = typer.Argument(..., help="the key's prefix: the part after 'mb_'"),
    database: str | None = DATABASE,
) -> None:
    """Revoke an API key; requests with it get 401 from now on."""

    async def work(db):  # type: ignore[no-untyped-def]
        async with db.begin() as conn:
            return await revoke_api_key(conn, prefix)

    if not run_db(database_url(database), work):
        typer.echo(f"error: no active key with prefix {prefix!r}", err=True)
        raise typer.Exit(1)
    typer.echo("revoked")


if __name__ == "__main__":
    app()
