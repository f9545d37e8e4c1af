"""The FastAPI application: routers, one error shape, security headers, OpenAPI at
/api/openapi.json."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from mailbeacon import __version__
from mailbeacon.api import (
    api_keys,
    audit,
    campaign_leads,
    campaigns,
    company,
    docs,
    errors,
    lead_admin,
    leads,
    lists,
    messages,
    rules,
    scoring,
    users,
    webhooks,
)
from mailbeacon.api.context import Services
from mailbeacon.api.deps import ids_in_range
from mailbeacon.api.headers import SecurityHeaders


def create_api(svc: Services) -> FastAPI:
    app = FastAPI(
        title="mailbeacon",
        version=__version__,
        openapi_url="/api/openapi.json",
        # Served by api.docs from the package, not from a CDN.
        docs_url=None,
        redoc_url=None,
        # Every route, dashboard pages included: ids past 64 bits are 404, never 500.
        dependencies=[Depends(ids_in_range)],
    )
    app.state.services = svc
    errors.install(app)
    app.add_middleware(SecurityHeaders)
    routers = (
        leads,
        lead_admin,
        lists,
        campaigns,
        campaign_leads,
        messages,
        rules,
        webhooks,
        audit,
        company,
        scoring,
        users,
        api_keys,
        docs,
    )
    for module in routers:
        app.include_router(module.router)
    return app
