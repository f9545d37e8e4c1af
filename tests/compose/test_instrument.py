"""A whole message for one lead: pixel, honeypot, footer, text part, warnings; and
HTML from the wild (hypothesis) never crashes it."""

from __future__ import annotations

import re
from typing import Any

import lxml.html
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbeacon.compose import GMAIL_CLIP_BYTES, Instrumented
from mailbeacon.compose.placement import CLIP_WARNING

BASE = "https://t.example.com"  # the base_url of the compose settings fixture
PAGE = (
    "<html><head><style>.cta { color: #fff }</style></head><body>"
    '<h1>Hello {{first_name}}</h1><a class="cta" href="https://shop.example/">Shop</a>'
    "<p>Bye</p></body></html>"
)


def body_children(html: str) -> list[Any]:
    root = lxml.html.document_fromstring(html)
    return list(root.find("body"))


def is_pixel(el: Any) -> bool:
    return el.tag == "img" and el.get("src", "").startswith(f"{BASE}/o/")


@pytest.mark.parametrize(
    ("placement", "position"),
    [("header", 0), ("body", -2), ("footer", -1)],  # body: just before our footer
)
def test_pixel_placement(compose: Any, placement: str, position: int) -> None:
    children = body_children(compose(PAGE, pixel_placement=placement).html)
    assert is_pixel(children[position])
    assert sum(is_pixel(el) for el in children) == 1


@pytest.mark.parametrize("fmt", ["gif", "png"])
def test_pixel_is_a_visible_1x1_image(compose: Any, fmt: str) -> None:
    [img] = [el for el in body_children(compose(PAGE, pixel_format=fmt).html) if is_pixel(el)]
    assert img.get("src").endswith(f".{fmt}")
    assert (img.get("width"), img.get("height"), img.get("alt")) == ("1", "1", "")
    assert "display" not in img.get("style") and "width:1px" in img.get("style")


def test_merge_css_and_links(compose: Any) -> None:
    out: Instrumented = compose(PAGE)
    assert out.subject == "Hello Ann" and "<h1>Hello Ann</h1>" in out.html
    assert 'style="color: #fff;"' in out.html  # inlined
    kinds = [(link.kind, link.url) for link in out.links]
    assert ("link", "https://shop.example/") in kinds
    assert [k for k, _ in kinds].count("honeypot") == 1
    assert "https://shop.example/" not in out.html


def test_honeypot_is_invisible_and_stored(compose: Any) -> None:
    out = compose(PAGE)
    [honeypot] = [link for link in out.links if link.kind == "honeypot"]
    [a] = [el for el in body_children(out.html) if el.get("aria-hidden") == "true"]
    assert a.get("style") == "display:none" and a.get("tabindex") == "-1"
    assert a.text is None and a.get("href").startswith(f"{BASE}/c/")
    assert honeypot.url == f"{BASE}/"
    assert "honeypot" not in out.text and a.get("href") not in out.text


@pytest.mark.parametrize(
    ("html", "forward", "footer_links"),
    [
        ("<p>Hi</p>", False, ["Unsubscribe"]),
        ("<p>Hi</p>", True, ["Forward to a friend", "Unsubscribe"]),
        ('<p><a href="{{unsubscribe_url}}">Leave</a></p>', False, []),
        ('<p><a href="{{unsubscribe_url}}">Leave</a></p>', True, ["Forward to a friend"]),
        ('<a href="{{forward_url}}">Share</a><a href="{{unsubscribe_url}}">x</a>', True, []),
    ],
)
def test_footer_adds_only_missing_links(
    compose: Any, html: str, forward: bool, footer_links: list[str]
) -> None:
    out = compose(html, forward_link=forward)
    footer = lxml.html.document_fromstring(out.html).find_class("mailbeacon-footer")
    assert [a.text for f in footer for a in f.iter("a")] == footer_links
    [unsub] = [link for link in out.links if link.kind == "unsubscribe"]
    assert out.html.count(unsub.url) == 1 and unsub.url.startswith(f"{BASE}/u/")
    assert out.headers["List-Unsubscribe"] == f"<{unsub.url}>"
    assert (any(link.kind == "forward" for link in out.links)) is forward


def test_text_generated_from_html_is_tracked(compose: Any) -> None:
    out = compose(PAGE + '<p>Read <a href="https://blog.example/post">the post</a>.</p>')
    assert "Hello Ann" in out.text and "/o/" not in out.text  # text cannot carry a pixel
    assert "shop.example" not in out.text and "blog.example" not in out.text
    assert len(re.findall(f"{BASE}/c/", out.text)) == 2
    assert f"{BASE}/u/" in out.text  # the unsubscribe link is in the text too


def test_given_text_is_merged_tracked_and_gets_unsubscribe(compose: Any) -> None:
    out = compose(PAGE, text="Hi {{first_name}}, see https://shop.example/. Or https://x.example!")
    assert out.text.startswith(f"Hi Ann, see {BASE}/c/")
    assert ". Or " in out.text and out.text.count(f"{BASE}/c/") == 2
    assert "\n-- \nUnsubscribe: " + BASE + "/u/" in out.text
    shop = [link for link in out.links if link.url == "https://shop.example/"]
    assert len(shop) == 1  # the same link in HTML and text shares an index


def pixel_end(html: str) -> int:
    """Where the pixel's tag ends, in bytes of the HTML as sent (found independently of
    compose: the first <img> whose src is our /o/ URL)."""
    m = re.search(rb'<img[^>]*src="' + BASE.encode() + rb'/o/[^"]+"[^>]*>', html.encode())
    assert m is not None
    return m.end()


def clip(html: str) -> str:
    data = html.encode()
    return CLIP_WARNING.format(end=pixel_end(html), size=len(data), limit=GMAIL_CLIP_BYTES)


BIG_BODY = f"<p>{'x' * GMAIL_CLIP_BYTES}</p>"
BIG_HEAD = f"<html><head><title>{'t' * GMAIL_CLIP_BYTES}</title></head><body><p>Hi</p></body>"


@pytest.mark.parametrize(
    ("html", "placement", "warned"),
    [
        (BIG_BODY, "footer", True),
        (BIG_BODY, "body", True),  # after the content: clipped just the same
        (BIG_BODY, "header", False),
        (BIG_HEAD, "header", True),  # the head alone pushes it past the cut
        ("<p>small</p>", "footer", False),
        ("<p>small</p>", "body", False),
    ],
)
def test_gmail_clipping_warning_for_every_placement(
    compose: Any, html: str, placement: str, warned: bool
) -> None:
    out = compose(html, pixel_placement=placement)
    assert out.warnings == ((clip(out.html),) if warned else ())
    if warned:
        assert pixel_end(out.html) > GMAIL_CLIP_BYTES
        assert f"of {len(out.html.encode()):,} bytes of HTML" in out.warnings[0]


@pytest.mark.parametrize("placement", ["body", "footer"])
def test_gmail_clipping_boundary_is_the_pixel_end_at_102_kb(compose: Any, placement: str) -> None:
    """Padded so the pixel's tag ends exactly at byte 104,448: no warning; one byte more
    (a two-byte character in place of one x): the warning, with that size."""
    probe = compose("<p>x</p>", pixel_placement=placement)
    padding = 1 + GMAIL_CLIP_BYTES - pixel_end(probe.html)
    at_limit = compose(f"<p>{'x' * padding}</p>", pixel_placement=placement)
    assert pixel_end(at_limit.html) == GMAIL_CLIP_BYTES
    assert at_limit.warnings == ()
    past = compose(f"<p>{'x' * (padding - 1)}\u00e9</p>", pixel_placement=placement)
    assert pixel_end(past.html) == GMAIL_CLIP_BYTES + 1
    assert past.warnings == (
        CLIP_WARNING.format(
            end=GMAIL_CLIP_BYTES + 1, size=len(past.html.encode()), limit=GMAIL_CLIP_BYTES
        ),
    )
    assert "ends at byte 104,449 of " in past.warnings[0]


def test_headers(compose: Any) -> None:
    headers = compose(PAGE).headers
    assert headers["To"] == "Ann Lee <ann@example.com>"
    assert headers["Subject"] == "Hello Ann"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<mb\.7\.[0-9a-f]{12}@mailbeacon\.localhost>", headers["Message-ID"])
    assert headers["Date"].endswith("+0000")


def test_broken_template_is_a_value_error(compose: Any) -> None:
    with pytest.raises(ValueError, match="merge field error on line 1"):
        compose("<p>{{ first_name </p>")


TAGS = st.sampled_from(
    [
        "<a href='https://e.example/x'>",
        "</a>",
        "<p>",
        "</p>",
        "<table>",
        "<td>",
        "<body>",
        "</html>",
        "<!--",
        "-->",
        "<!--[if mso]>",
        "<![endif]-->",
        '<v:rect href="http://v.example">',
        "<a href=mailto:x@y>",
        "<area href=https://m.example>",
        "<img src=x>",
        "&nbsp;",
        "&amp",
        "<style>p{color:red}</style>",
        "<head>",
        "<![CDATA[",
        "<?xml version='1.0' encoding='utf-8'?>",
        "<!DOCTYPE html>",
        "\x00",
        "<",
        ">",
        '"',
        "'",
    ]
)
HTMLISH = st.lists(st.one_of(TAGS, st.text(max_size=20)), max_size=40).map("".join)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(html=HTMLISH)
def test_any_html_is_instrumented(compose: Any, html: str) -> None:
    out = compose(html.replace("{", ""))  # braces are templates: tested in test_merge_fields
    root = lxml.html.document_fromstring(out.html)
    assert sum(is_pixel(el) for el in root.iter("img")) == 1
    for a in root.iter("a", "area"):
        href = (a.get("href") or "").strip()
        assert not href.startswith(("http://e.example", "https://m.example")), out.html
    assert all(link.url for link in out.links)
    assert "/o/" not in out.text


def test_forward_url_renders_wherever_written_and_footer_link_only_when_asked(
    compose: Any,
) -> None:
    html = '<p><a href="{{forward_url}}">Share this</a></p>'
    for forward_link in (False, True):
        out = compose(html, text="Share: {{forward_url}}", forward_link=forward_link)
        [fwd] = [link for link in out.links if link.kind == "forward"]
        assert fwd.url.startswith(f"{BASE}/f/")
        assert out.html.count(f'href="{fwd.url}"') == 1  # the author's link, not another
        assert out.text.startswith(f"Share: {fwd.url}\n")
        assert "Forward to a friend" not in out.html + out.text
    plain = compose("<p>Hi</p>", forward_link=True)
    [fwd] = [link for link in plain.links if link.kind == "forward"]
    footer = lxml.html.document_fromstring(plain.html).find_class("mailbeacon-footer")
    assert [(a.text, a.get("href")) for a in footer[0].iter("a")] == [
        ("Forward to a friend", fwd.url),
        ("Unsubscribe", next(k.url for k in plain.links if k.kind == "unsubscribe")),
    ]
    assert f"[Forward to a friend]({fwd.url})" in plain.text  # text made from the HTML
    assert not any(link.kind == "forward" for link in compose("<p>Hi</p>").links)


def test_forwarders_note_comes_first_escaped_and_untracked(settings: Any, signer: Any) -> None:
    from mailbeacon.compose import Note, Recipient, instrument

    note = Note("Look <b>this</b> & {{ 7*7 }} https://evil.example/x", "Bo forwarded this:")
    out = instrument(
        subject="Hi",
        html="<p>Sale</p>",
        text=None,
        recipient=Recipient(9, "friend@example.com"),
        message_id=8,
        company_id=1,
        signer=signer,
        settings=settings,
        note=note,
    )
    first = body_children(out.html)[0]
    assert first.get("class") == "mailbeacon-note"
    assert [p.text for p in first] == ["Bo forwarded this:", note.text]
    assert "Look &lt;b&gt;this&lt;/b&gt; &amp; {{ 7*7 }} https://evil.example/x" in out.html
    assert all("evil" not in link.url for link in out.links)
    assert out.text.startswith(f"Bo forwarded this:\n{note.text}\n\nSale")
