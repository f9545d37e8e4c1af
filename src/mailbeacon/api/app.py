"""The FastAPI application: routers, one error shape, OpenAPI at /api/openapi.json."""

from __future__ import annotations

from fastapi import FastAPI

from mailbeacon import __version__
from mailbeacon.api import campaign_leads, campaigns, errors, leads, lists, messages, rules
from mailbeacon.api.context import Services


def create_api(svc: Services) -> FastAPI:
    app = FastAPI(
        title="mailbeacon",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.services = svc
    errors.install(app)
    for module in (leads, lists, campaigns, campaign_leads, messages, rules):
        app.include_router(module.router)
    return app
