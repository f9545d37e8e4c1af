"""Instrumenting one message for one lead: the whole compose pipeline in order.

merge fields -> CSS inlined -> footer links the email lacks -> text alternative ->
links tracked -> honeypot and pixel -> a forwarder's note -> headers. Pure: the message
id must already exist (the store inserts the row first) because every token carries it.

`{{forward_url}}` renders the message's `/f/` URL wherever the author writes it, on
every message; `Options.forward_link` only decides whether the footer carries a visible
"Forward to a friend" link too (when the author has not placed that URL already).
"""

from __future__ import annotations

import datetime as dt

from lxml.html import HtmlElement

from mailbeacon.compose import document, placement
from mailbeacon.compose.headers import message_headers
from mailbeacon.compose.links import hrefs, rewrite_links
from mailbeacon.compose.merge import fields_for, render
from mailbeacon.compose.model import Instrumented, Note, Options, Recipient
from mailbeacon.compose.text import add_footer, html_to_text, track_text_links
from mailbeacon.compose.tracking import Tracker
from mailbeacon.settings import Settings
from mailbeacon.tokens import Signer

FORWARD_FIELD = "forward_url"


def instrument(
    *,
    subject: str,
    html: str,
    text: str | None,
    recipient: Recipient,
    message_id: int,
    company_id: int,
    signer: Signer,
    settings: Settings,
    options: Options | None = None,
    date: dt.datetime | None = None,
    note: Note | None = None,
) -> Instrumented:
    """The message as it will be sent to `recipient`, with every link it tracks.

    `note`: what a reader wrote when forwarding this to `recipient`, shown first (HTML
    escaped, never a template, never a tracked link).
    Raises ValueError when a merge field template is broken.
    """
    opts = (options or Options()).for_recipient(recipient)
    tracker = Tracker(
        base_url=settings.base_url,
        signer=signer,
        company_id=company_id,
        message_id=message_id,
        lead_id=recipient.id,
        utm=opts.utm,
    )
    unsubscribe_url = tracker.unsubscribe_url()
    # Made only when used: a stored link row per message costs at campaign scale.
    wants_forward = opts.forward_link or any(
        FORWARD_FIELD in t for t in (subject, html, text or "")
    )
    forward_url = tracker.forward_url() if wants_forward else None
    extra = {"unsubscribe_url": unsubscribe_url, "forward_url": forward_url or ""}
    fields = fields_for(recipient, **extra)
    footer_forward = forward_url if opts.forward_link else None

    merged_html = render(html, fields, html=True, meets=recipient.meets)
    root = document.parse(document.inline_css(merged_html))
    footer_el = _add_footer(root, unsubscribe_url, footer_forward)
    # Text is made before tracking so it reads like the HTML, then tracked on its own.
    if text is None:
        plain = html_to_text(document.serialize(root))
    else:
        plain = render(text, fields, html=False, meets=recipient.meets)
    plain = add_footer(plain, unsubscribe_url, footer_forward)
    if opts.track_clicks:
        plain = track_text_links(plain, tracker)
        rewrite_links(root, tracker)
    pixel_src = _add_machinery(root, tracker, opts, footer_el)
    if note is not None:
        # After link rewriting: a URL the forwarder typed stays text, never a link we vouch for.
        note = Note(document.representable(note.text), document.representable(note.intro))
        _add_note(root, note)
        plain = f"{note.intro}\n{note.text}\n\n{plain}"

    out = document.serialize(root)
    merged_subject = render(subject, fields, html=False, meets=recipient.meets)
    headers = message_headers(
        settings=settings,
        message_id=message_id,
        recipient=recipient,
        subject=merged_subject,
        unsubscribe_url=unsubscribe_url,
        date=date,
    )
    return Instrumented(
        subject=merged_subject,
        html=out,
        text=plain,
        links=tracker.links,
        warnings=tuple(placement.clip_warnings(out, pixel_src) if pixel_src else ()),
        headers=headers,
    )


def _add_footer(
    root: HtmlElement, unsubscribe_url: str, forward_url: str | None
) -> HtmlElement | None:
    """Append a footer holding the links the author did not place themselves, if any."""
    present = hrefs(root)
    unsub = None if unsubscribe_url in present else unsubscribe_url
    fwd = None if forward_url is None or forward_url in present else forward_url
    if not (unsub or fwd):
        return None
    footer_el = placement.footer(unsub, fwd)
    document.body(root).append(footer_el)
    return footer_el


def _add_note(root: HtmlElement, note: Note) -> None:
    """The forwarder's note, first thing in the body."""
    body, note_el = document.body(root), placement.note(note.text, note.intro)
    note_el.tail, body.text = body.text, None
    body.insert(0, note_el)


def _add_machinery(
    root: HtmlElement, tracker: Tracker, opts: Options, footer_el: HtmlElement | None
) -> str:
    """The honeypot (after the content) and the pixel (where the campaign wants it);
    the pixel's URL ("" when opens are not tracked)."""
    body = document.body(root)
    if opts.honeypot and opts.track_clicks:
        hp = placement.honeypot(tracker.honeypot_url())
        if footer_el is not None:
            footer_el.addprevious(hp)
        else:
            body.append(hp)
    if not opts.track_opens:
        return ""
    src = tracker.pixel_url(opts.pixel_format)
    placement.place_pixel(body, placement.pixel(src), opts.pixel_placement, footer_el)
    return src
