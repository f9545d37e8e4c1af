"""The dashboard: server-rendered pages (Jinja2) over the same services as the API.

`install(app)` adds the pages and their static files to the FastAPI app. Packages that
add pages (automation rules) write their own router, extend `base.html` (blocks `nav`,
`title`, `content`, `scripts`) and use `web.auth.tracking_user` for access.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from mailbeacon.web.static_paths import STATIC


def install(app: FastAPI) -> None:
    from mailbeacon.web import outbox, pages, rules
    from mailbeacon.web.auth import PageExit

    async def _exit(_: Request, e: Exception) -> Response:
        assert isinstance(e, PageExit)
        return e.response

    app.add_exception_handler(PageExit, _exit)
    app.include_router(pages.router)
    app.include_router(outbox.router)
    app.include_router(rules.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
