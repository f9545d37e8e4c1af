"""The few HTML pages the edge serves: plain, script-free, every value escaped."""

from __future__ import annotations

from html import escape

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;"
    "color:#222}label{display:block;margin:.8rem 0 .2rem}input,textarea{width:100%;"
    "padding:.4rem;font:inherit}button{margin-top:1rem;padding:.5rem 1.2rem;font:inherit}"
    ".error{color:#a00}"
)


def page(title: str, content: str) -> bytes:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<meta name=robots content=noindex><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{content}</body></html>"
    ).encode()


NOT_FOUND = page("Link not found", "<p>This link is not valid. It may have been mistyped.</p>")
EMPTY_PAGE = b"<!doctype html><html><head><title></title></head><body></body></html>"
UNAVAILABLE = page(
    "Please try again", "<p>We could not complete this just now. Please try again shortly.</p>"
)
FORBIDDEN = page("Form expired", "<p>This form has expired. Please open the link again.</p>")
TOO_LARGE = page("Too large", "<p>The form you sent is too large.</p>")
UNSUBSCRIBED = page("You are unsubscribed", "<p>You will not receive these emails again.</p>")
FORWARDED = page("Thank you", "<p>We sent your friend their own copy of the email.</p>")
FORWARD_LIMIT = page(
    "Please wait", "<p>This email has been forwarded several times already. Try later.</p>"
)


def continue_to(location: str) -> bytes:
    """Where a click goes when it cannot be counted: on at once, without a 302."""
    url = escape(location, quote=True)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv=refresh content="0;url={url}"><meta name=robots content=noindex>'
        f'<title>Continue</title></head><body><p><a href="{url}">Continue</a></p>'
        "</body></html>"
    ).encode()


def confirm_unsubscribe(nonce: str) -> bytes:
    return page(
        "Unsubscribe",
        "<p>Stop receiving these emails?</p>"
        '<form method=post><input type=hidden name=nonce value="'
        f'{escape(nonce)}"><button type=submit>Unsubscribe</button></form>',
    )


def forward_form(
    nonce: str, *, email: str = "", name: str = "", note: str = "", error: str = ""
) -> bytes:
    problem = f"<p class=error role=alert>{escape(error)}</p>" if error else ""
    return page(
        "Forward to a friend",
        f"{problem}<form method=post>"
        f'<input type=hidden name=nonce value="{escape(nonce)}">'
        "<label for=email>Friend's email</label>"
        f'<input id=email name=email type=email required maxlength=320 value="{escape(email)}">'
        "<label for=name>Friend's name</label>"
        f'<input id=name name=name maxlength=200 value="{escape(name)}">'
        "<label for=note>A note (optional)</label>"
        f"<textarea id=note name=note maxlength=1000 rows=4>{escape(note)}</textarea>"
        "<button type=submit>Send</button></form>",
    )
