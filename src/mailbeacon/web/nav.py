"""The top bar: the pages a role may open, and only those.

Tracking roles reach every page; the sales roles see their own leads and no tracking
data, so their bar holds Leads only. Settings is for the roles that manage the company
(administrators and company managers).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from mailbeacon.crm.access import Permission, allowed

TRACKING_PAGES = (
    ("/", "Home"),
    ("/campaigns", "Campaigns"),
    ("/leads", "Leads"),
    ("/lists", "Lists"),
    ("/rules", "Rules"),
    ("/outbox", "Outbox"),
)
SALES_PAGES = (("/leads", "Leads"),)
SETTINGS = ("/settings", "Settings")
API_DOCS = ("/api/docs", "API docs")


def nav_links(request: Request, who: Any) -> list[tuple[str, str]]:
    """(href, label) for each page `who` may open, in the bar's order."""
    if who is None:
        return []
    if not allowed(who.role, who.plan, Permission.VIEW_TRACKING):
        return list(SALES_PAGES)
    links = list(TRACKING_PAGES)
    if allowed(who.role, who.plan, Permission.MANAGE_COMPANY):
        links.append(SETTINGS)
    links.append(API_DOCS)
    return links


def current(request: Request, href: str) -> bool:
    """Whether the link `href` is the page being shown (or a page beneath it)."""
    path = request.url.path
    return path == href if href == "/" else path == href or path.startswith(href + "/")
