"""The dashboard: server-rendered pages (Jinja2) over the same services as the API.

`install(app)` adds the pages and their static files to the FastAPI app. Packages that
add pages write their own router, extend `base.html` (blocks `title`, `content`,
`scripts` for `<script src="/static/...">` tags, `head`) and use `web.auth.tracking_user`
(or `page_user` for pages the sales roles may open) for access. The top bar comes from
`web.nav`. In templates: `{{ at | when }}` for a date, `{{ at | ago }}` for "3 minutes
ago"; a wide table goes in `<div class="scroll" tabindex="0" role="region"
aria-label="...">` so it scrolls on a phone; htmx is loaded on every page. The CSP
allows no inline script or style: page scripts are files under static/.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from mailbeacon.web.static_paths import STATIC


def install(app: FastAPI) -> None:
    from mailbeacon.api.errors import IdOutOfRange, error_body
    from mailbeacon.web import (
        composer,
        engaged,
        imports,
        invite,
        leads,
        lists,
        outbox,
        pages,
        rules,
        scoring,
        settings,
        settings_keys,
        settings_users,
        webhooks,
    )
    from mailbeacon.web.auth import PageExit, templates

    async def _exit(_: Request, e: Exception) -> Response:
        assert isinstance(e, PageExit)
        return e.response

    async def _no_such_id(request: Request, e: Exception) -> Response:
        """The API answers its JSON error; a page answers an HTML 404 page."""
        assert isinstance(e, IdOutOfRange)
        if request.url.path.startswith("/api/"):
            return JSONResponse(error_body(e.code, e.message, e.field), status_code=e.status)
        message = "There is no such page." if e.status == 404 else e.message
        context = {"who": None, "status": e.status, "message": message}
        return templates.TemplateResponse(request, "error.html", context, status_code=e.status)

    app.add_exception_handler(PageExit, _exit)
    app.add_exception_handler(IdOutOfRange, _no_such_id)
    # Before pages: /campaigns/new and the campaign's sub-pages are not a campaign id.
    app.include_router(composer.router)
    app.include_router(engaged.router)
    # Before pages: /leads/import and /leads/export.csv are not /leads/{lead_id}.
    app.include_router(imports.router)
    app.include_router(leads.router)
    app.include_router(lists.router)
    app.include_router(pages.router)
    app.include_router(outbox.router)
    app.include_router(rules.router)
    app.include_router(webhooks.router)
    app.include_router(settings.router)
    app.include_router(scoring.router)
    app.include_router(settings_users.router)
    app.include_router(settings_keys.router)
    app.include_router(invite.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
