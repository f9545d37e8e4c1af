"""What compose adds to the HTML: the pixel, the footer links and the honeypot link.

The pixel is a visible 1x1 image (width/height 1, empty alt): clients skip images they
see hidden with `display:none`, so hiding it would lose real opens. The honeypot is the
opposite: a link no person can see or reach, so a click on it is a machine's.
"""

from __future__ import annotations

import lxml.html
from lxml import etree

from mailbeacon.compose.model import GMAIL_CLIP_BYTES, PixelPlacement

PIXEL_STYLE = "border:0;width:1px;height:1px"
FOOTER_STYLE = "font-size:12px;line-height:18px;color:#6b7280;text-align:center;padding:16px 0"
CLIP_WARNING = (
    "The tracking pixel ends at byte {end:,} of {size:,} bytes of HTML, past Gmail's "
    "102 KB ({limit:,}-byte) clipping point: Gmail readers will not load it unless they "
    "expand the message, so their opens go unseen. Place the pixel in the header, or "
    "make the email smaller."
)
NOTE_STYLE = "white-space:pre-line;border-left:3px solid #d1d5db;padding:8px 12px;margin:0 0 16px 0"


def pixel(src: str) -> lxml.html.HtmlElement:
    return lxml.html.Element(
        "img", src=src, width="1", height="1", alt="", style=PIXEL_STYLE, border="0"
    )


def honeypot(href: str) -> lxml.html.HtmlElement:
    return lxml.html.Element(
        "a", href=href, style="display:none", tabindex="-1", **{"aria-hidden": "true"}
    )


def footer(unsubscribe_url: str | None, forward_url: str | None) -> lxml.html.HtmlElement:
    """A small centred footer with whichever of the two links the email lacks."""
    div = lxml.html.Element("div", style=FOOTER_STYLE, **{"class": "mailbeacon-footer"})
    for href, label in ((forward_url, "Forward to a friend"), (unsubscribe_url, "Unsubscribe")):
        if href is None:
            continue
        if len(div):
            div[-1].tail = " \u00b7 "
        a = etree.SubElement(div, "a", href=href, style="color:#6b7280")
        a.text = label
    return div


def place_pixel(
    body: lxml.html.HtmlElement,
    img: lxml.html.HtmlElement,
    placement: PixelPlacement,
    footer_el: lxml.html.HtmlElement | None,
) -> None:
    """Header: first thing in the body. Body: after the content, before a footer we
    added. Footer: the very last element."""
    if placement == "header":
        img.tail, body.text = body.text, None
        body.insert(0, img)
    elif placement == "body" and footer_el is not None:
        footer_el.addprevious(img)
    else:
        body.append(img)


def note(text: str, intro: str) -> lxml.html.HtmlElement:
    """The forwarder's note to their friend, first in the friend's copy. Set as text
    nodes, so lxml escapes it: the note is the one part of the mail a stranger wrote."""
    div = lxml.html.Element("div", style=NOTE_STYLE, **{"class": "mailbeacon-note"})
    p = etree.SubElement(div, "p", style="margin:0 0 8px 0;font-weight:bold")
    p.text = intro
    body = etree.SubElement(div, "p", style="margin:0")
    body.text = text
    return div


def clip_warnings(html: str, pixel_src: str) -> list[str]:
    """A warning when the pixel ends past Gmail's clipping point, wherever it was placed.

    Gmail counts the bytes of the HTML as sent; the pixel loads only if its tag is
    inside them. `pixel_src` is found as written (tokens and our base URL need no
    escaping in an attribute).
    """
    data = html.encode("utf-8")
    start = data.find(pixel_src.encode("utf-8"))
    if start < 0:
        return []
    end = data.find(b">", start) + 1 or len(data)
    if end <= GMAIL_CLIP_BYTES:
        return []
    return [CLIP_WARNING.format(end=end, size=len(data), limit=GMAIL_CLIP_BYTES)]
