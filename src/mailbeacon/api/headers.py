"""Security headers on every dashboard and API answer (not the edge's /o /c /u /f).

The dashboard runs only its own scripts and styles (`/static/`), so its CSP names no
other source and no inline code. A response that already carries a CSP keeps it: a
page that shows a mail in a sandboxed frame sets a stricter one of its own. Private
answers are never cached; the static files may be.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Swagger UI (api/docs.py) runs from the package's own files; its React views set
# inline style attributes, so that page alone allows inline styles. Still no inline script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
DOCS_PATH = "/api/docs"
PUBLIC_PREFIX = "/static/"


def csp_for(path: str) -> str:
    return DOCS_CSP if path.startswith(DOCS_PATH) else DASHBOARD_CSP


class SecurityHeaders:
    """Adds the headers an answer does not set itself, on `http.response.start`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("content-security-policy", csp_for(path))
                headers.setdefault("x-content-type-options", "nosniff")
                headers.setdefault("referrer-policy", "same-origin")
                if not path.startswith(PUBLIC_PREFIX):
                    headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)
