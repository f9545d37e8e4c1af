"""Link rewriting: every http(s) link of the HTML becomes a tracked `/c/` link.

`<a>` and `<area>` in the document, and any `href` inside Outlook conditional comments
(`<!--[if mso]> <v:roundrect href=...> <![endif]-->`), which is where "bulletproof"
buttons keep their link for Outlook. What is not a web link (mailto:, tel:, #anchors,
relative links) and what is ours already (pixel, unsubscribe, tracked) stays as it is.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import lxml.html
from lxml import etree

from mailbeacon.compose.tracking import Tracker

LINK_TAGS = frozenset({"a", "area"})
# `[if mso]`, `[if gte mso 9]`, `[if mso | IE]`...: any downlevel-hidden conditional.
_CONDITIONAL = re.compile(r"^\s*\[if [^\]]*\]>", re.IGNORECASE)
_HREF_ATTR = re.compile(r"""(\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)

Rewrite = Callable[[str], str | None]


def _is_link(el: lxml.html.HtmlElement) -> bool:
    tag = el.tag if isinstance(el.tag, str) else ""
    # VML (`v:roundrect`) may also appear outside comments in hand-written templates.
    return tag.lower() in LINK_TAGS or ":" in tag


def rewrite_conditional(comment: str, rewrite: Rewrite) -> str:
    """The text of a conditional comment with its `href` values rewritten.

    The comment is edited in place rather than parsed and written back: conditional
    comments routinely hold half a table (`<table><tr><td>` opened in one comment and
    closed in another), which a parser would close and so break Outlook's layout.
    """

    def replace(m: re.Match[str]) -> str:
        new = rewrite(html.unescape(m[3]))
        if new is None:
            return m[0]
        return f"{m[1]}{m[2]}{html.escape(new, quote=True)}{m[2]}"

    return _HREF_ATTR.sub(replace, comment)


def rewrite_links(root: lxml.html.HtmlElement, tracker: Tracker) -> None:
    """Rewrite the links of the document in place, in document order."""
    for el in root.iter():
        if el.tag is etree.Comment:
            text = el.text or ""
            if _CONDITIONAL.match(text):
                new_text = rewrite_conditional(text, tracker.rewrite)
                if new_text != text:  # lxml re-validates every assignment: skip no-ops
                    el.text = new_text
            continue
        href = el.get("href")
        if href is not None and _is_link(el):
            new = tracker.rewrite(href)
            if new is not None:
                el.set("href", new)


def hrefs(root: lxml.html.HtmlElement) -> list[str]:
    """Every href of the document, including those inside conditional comments."""
    found = [el.get("href", "") for el in root.iter() if isinstance(el.tag, str)]
    for comment in root.iter(etree.Comment):
        found += [html.unescape(m[3]) for m in _HREF_ATTR.finditer(comment.text or "")]
    return [h.strip() for h in found if h]
