"""The process: the tracking edge beside the API and dashboard, plus the pipeline stages.

Requests for /o/, /c/, /u/ and /f/ go straight to the raw ASGI edge (no framework on the
hot path); everything else goes to FastAPI. The lifespan starts the background stages
(enrich, rollups, automation); with several workers each stage holds a lease, so one
process runs it at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import multiprocessing
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy import func, select
from starlette.types import ASGIApp, Receive, Scope, Send

from mailbeacon.api.app import create_api
from mailbeacon.api.context import Services
from mailbeacon.api.limits import BodyLimit
from mailbeacon.crm.erase import mail_of_lead
from mailbeacon.crm.errors import NotFound
from mailbeacon.crm.leads import ensure_referred_lead, set_lead_status
from mailbeacon.crm.limits import PlanLimit
from mailbeacon.delivery import send_forward_copy
from mailbeacon.edge import ActionUnavailable, Anonymizing, Friend, create_edge
from mailbeacon.pipeline import process
from mailbeacon.pipeline.process import name_process
from mailbeacon.recorder import open_recorder
from mailbeacon.settings import Settings, from_env, with_secret_keys
from mailbeacon.store import now
from mailbeacon.store.links import LinkResolver
from mailbeacon.store.privacy import anonymizing_companies
from mailbeacon.store.schema import hits
from mailbeacon.tokens import Token
from mailbeacon.web import install as install_web

log = logging.getLogger("mailbeacon")
EDGE_PREFIXES = ("/o/", "/c/", "/u/", "/f/")


class Dispatch:
    """Route tracking paths to the edge and the rest to the API, without middleware."""

    def __init__(self, edge: ASGIApp | None, rest: ASGIApp) -> None:
        self.edge, self.rest = edge, rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.edge is not None and scope["type"] == "http" and scope["path"][:3] in EDGE_PREFIXES:
            await self.edge(scope, receive, send)
        else:
            await self.rest(scope, receive, send)


class EdgeActions:
    """What the edge's forms do to the rest of the product (`mailbeacon.edge.Actions`)."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    async def unsubscribe(self, token: Token) -> None:
        async with self.svc.db.begin() as conn:
            # An erased lead's mail unsubscribes no one (not a new lead with their old id).
            if await mail_of_lead(conn, token.company_id, token.message_id, token.lead_id):
                await set_lead_status(conn, token.company_id, token.lead_id, "unsubscribed")

    async def forwards_since(self, token: Token, seconds: float) -> int:
        query = select(func.count()).where(
            hits.c.company_id == token.company_id,
            hits.c.message_id == token.message_id,
            hits.c.lead_id == token.lead_id,
            hits.c.kind == "forward",
            hits.c.at > now() - dt.timedelta(seconds=seconds),
        )
        async with self.svc.db.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def forward(self, token: Token, friend: Friend) -> None:
        svc = self.svc
        try:
            async with svc.db.begin() as conn:
                if not await mail_of_lead(conn, token.company_id, token.message_id, token.lead_id):
                    raise NotFound(f"message {token.message_id} was erased")
                friend_id = await ensure_referred_lead(
                    conn, token.company_id, friend.email, friend.name, token.lead_id
                )
        except NotFound as e:  # the lead was erased: their mail forwards nothing
            raise ActionUnavailable(e.message) from None
        except PlanLimit:  # the friend would be a lead past the plan's limit
            # The reader is not the company: tell them no more than that it failed.
            raise ActionUnavailable("This email cannot be forwarded right now.") from None
        try:
            await send_forward_copy(
                svc.db,
                svc.settings,
                svc.signer,
                company_id=token.company_id,
                message_id=token.message_id,
                friend_lead_id=friend_id,
                note=friend.note,
            )
        except LookupError as e:
            raise ActionUnavailable(str(e)) from None


def app_from_env() -> ASGIApp:
    """The uvicorn factory (`serve --workers N`): each worker reads its settings and
    serves HTTP only; the stages run in the pipeline process (`pipeline.process`). Its keys
    come from the environment or the key file `serve` made before starting it."""
    if multiprocessing.parent_process() is not None:  # a worker uvicorn started
        name_process("mb-worker")
    return create_app(with_secret_keys(from_env()), run_stages=False)


def create_app(settings: Settings, *, run_stages: bool = True) -> ASGIApp:
    svc = Services.build(settings)
    api = create_api(svc)
    install_web(api)
    recorder = open_recorder(settings)
    svc.extras["recorder"] = recorder
    anonymizing = Anonymizing(everyone=settings.anonymize_ip)

    async def load_anonymizing() -> frozenset[int]:
        async with svc.db.connect() as conn:
            return await anonymizing_companies(conn)

    edge = create_edge(
        signer=svc.signer,
        recorder=recorder,
        links=LinkResolver(svc.db),
        actions=EdgeActions(svc),
        form_secret=settings.secret_keys[0][1],
        trusted_proxies=settings.trusted_proxies,
        anonymizing=anonymizing,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        await recorder.start()
        # Known before the first hit is answered, then kept fresh (edge.privacy).
        try:
            await anonymizing.refresh(load_anonymizing)
        except Exception as exc:
            if not settings.clustered:
                raise
            # An edge of the multi-machine mode serves hits without PostgreSQL; the
            # workers anonymise what they store for those companies all the same.
            log.warning("edge started without the database (%s); anonymising later", exc)
        every = settings.privacy_refresh_seconds
        tasks = [asyncio.create_task(anonymizing.keep_fresh(load_anonymizing, every, stop))]
        if run_stages:
            tasks += process.start(svc.db, settings, stop)
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, timeout=5)
            await recorder.close()
            await svc.db.dispose()

    api.router.lifespan_context = lifespan
    return Dispatch(edge=edge, rest=BodyLimit(api, settings.max_body_bytes))
