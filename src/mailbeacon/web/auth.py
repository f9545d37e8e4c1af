"""Who is looking at a page: the session's user, and whether they may see tracking data.

Pages answer a redirect to /login without a session, and an HTML 403 to roles the
permission matrix keeps away from tracking data (the sales roles).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from mailbeacon.api.context import Services
from mailbeacon.crm.access import Permission, allowed
from mailbeacon.crm.users import Principal, get_session_principal
from mailbeacon.edge.client import ClientAddress
from mailbeacon.web import nav
from mailbeacon.web import session as sessions
from mailbeacon.web.dates import ago, when
from mailbeacon.web.static_paths import TEMPLATES

templates = Jinja2Templates(directory=TEMPLATES)
# Every page: `{{ x | when }}` for dates, and the top bar's links for the role.
templates.env.filters["when"] = when
templates.env.filters["ago"] = ago
templates.env.globals["nav_links"] = nav.nav_links
templates.env.globals["nav_current"] = nav.current


class PageExit(Exception):
    """Raised by a page to answer with `response` instead (redirect or 403)."""

    def __init__(self, response: Response) -> None:
        self.response = response


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def current_user(request: Request) -> tuple[Principal, sessions.Session] | None:
    svc = services(request)
    session = sessions.verify(
        svc.settings.secret_keys, request.cookies.get(sessions.SESSION_COOKIE)
    )
    if session is None:
        return None
    async with svc.db.connect() as conn:
        who = await get_session_principal(conn, session.user_id, session.epoch)
    return (who, session) if who else None


def _from_trusted_proxy(request: Request) -> bool:
    trusted = services(request).settings.trusted_proxies
    peer = request.client.host if request.client else None
    return bool(trusted) and peer is not None and ClientAddress(trusted).peer_is_trusted(peer)


def over_https(request: Request) -> bool:
    """Whether the browser reached us over HTTPS: directly, or through a trusted proxy
    that says so (`X-Forwarded-Proto`, the value the nearest proxy wrote)."""
    if request.url.scheme == "https":
        return True
    if not _from_trusted_proxy(request):
        return False
    proto = request.headers.get("x-forwarded-proto", "").rsplit(",", 1)[-1]
    return proto.strip().lower() == "https"


def client_address(request: Request) -> str | None:
    """The browser's address: the peer, or `X-Forwarded-For` from a trusted proxy."""
    peer = request.client.host if request.client else None
    forwarded = request.headers.get("x-forwarded-for")
    client = ClientAddress(services(request).settings.trusted_proxies)
    return client(peer, forwarded.encode("latin-1") if forwarded else None)


def start_session(request: Request, response: Response, user_id: int, epoch: int) -> None:
    """Sign the browser in: the session cookie (login, or an accepted invitation)."""
    response.set_cookie(
        sessions.SESSION_COOKIE,
        sessions.issue(services(request).settings.secret_keys, user_id, epoch),
        max_age=sessions.MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=over_https(request),
    )
    response.delete_cookie(sessions.LOGIN_CSRF_COOKIE)


async def page_user(request: Request) -> tuple[Principal, sessions.Session]:
    """Any signed-in user; everyone else is sent to the login page."""
    found = await current_user(request)
    if found is None:
        raise PageExit(RedirectResponse(f"/login?next={request.url.path}", status_code=303))
    return found


async def tracking_user(request: Request) -> tuple[Principal, sessions.Session]:
    """A signed-in user whose role may see tracking data; 403 for the sales roles."""
    who, session = await page_user(request)
    if not allowed(who.role, who.plan, Permission.VIEW_TRACKING):
        page = templates.TemplateResponse(
            request,
            "error.html",
            {
                "who": who,
                "csrf": sessions.csrf_token(services(request).settings.secret_keys, session),
                "status": 403,
                "message": f"The {who.role.replace('_', ' ')} role cannot see email tracking "
                "data. Ask an administrator or a marketing manager.",
            },
            status_code=403,
        )
        raise PageExit(page)
    return who, session
