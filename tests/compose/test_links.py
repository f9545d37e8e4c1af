"""Link rewriting: which links become tracked, and where each click may lead."""

from __future__ import annotations

import pytest

from mailbeacon.compose import document
from mailbeacon.compose.links import rewrite_conditional, rewrite_links
from mailbeacon.compose.tracking import Tracker
from mailbeacon.tokens import Kind, Signer

BASE = "https://t.example.com"  # the base_url of the compose settings fixture


@pytest.mark.parametrize(
    ("url", "tracked"),
    [
        ("https://example.com/", True),
        ("http://example.com/a?b=1#c", True),
        ("HTTPS://EXAMPLE.COM", True),
        ("  https://example.com/padded  ", True),
        ("mailto:sales@example.com", False),
        ("tel:+15551234", False),
        ("#section-2", False),
        ("/relative/path", False),
        ("javascript:alert(1)", False),
        ("ftp://example.com/file", False),
        ("https://", False),
        ("http://[::1", False),  # unparseable
        (f"{BASE}/c/k1.abc", False),  # tracked already
        (f"{BASE}/o/k1.abc.gif", False),
        (f"{BASE}/u/k1.abc", False),  # our unsubscribe link
        (f"{BASE}/f/k1.abc", False),
        (f"{BASE}/pricing", True),  # our own site is still a link
        ("", False),
    ],
)
def test_which_links_are_tracked(tracker: Tracker, url: str, tracked: bool) -> None:
    assert (tracker.rewrite(url) is not None) is tracked


def test_identical_links_share_an_index_and_tokens_point_at_them(
    tracker: Tracker, signer: Signer
) -> None:
    a1 = tracker.rewrite("https://example.com/a")
    b = tracker.rewrite("https://example.com/b")
    a2 = tracker.rewrite("https://example.com/a")
    assert a1 == a2 != b
    assert [(link.index, link.url) for link in tracker.links] == [
        (0, "https://example.com/a"),
        (1, "https://example.com/b"),
    ]
    assert b is not None
    token = signer.verify(b.removeprefix(f"{BASE}/c/"))
    assert token is not None
    assert (token.kind, token.company_id, token.message_id, token.lead_id) == (
        Kind.CLICK,
        1,
        7,
        42,
    )
    assert tracker.links[token.link_index].url == "https://example.com/b"


def test_stored_link_carries_utm_tags(signer: Signer) -> None:
    tracker = Tracker(
        base_url=BASE,
        signer=signer,
        company_id=1,
        message_id=7,
        lead_id=42,
        utm={"campaign": "spring"},
    )
    tracker.rewrite("https://example.com/?utm_source=blog")
    assert tracker.links[0].url == (
        "https://example.com/?utm_source=blog&utm_medium=email&utm_campaign=spring"
    )


def test_html_links_rewritten_in_place(tracker: Tracker) -> None:
    root = document.parse(
        '<p><a href="https://a.example">a</a> <a href="mailto:x@y">m</a>'
        '<map><area href="https://b.example/map"></map>'
        '<link rel="stylesheet" href="https://cdn.example/s.css"></p>'
    )
    rewrite_links(root, tracker)
    out = document.serialize(root)
    assert "https://a.example" not in out and "https://b.example" not in out
    assert 'href="mailto:x@y"' in out
    assert "https://cdn.example/s.css" in out  # a stylesheet is not a click
    assert [link.url for link in tracker.links] == ["https://a.example", "https://b.example/map"]


MSO = (
    "[if mso]><table><tr><td>"  # half a table: opened here, closed in another comment
    '<v:roundrect xmlns:v="urn:schemas-microsoft-com:vml" href="https://a.example/?x=1&amp;y=2"'
    " arcsize='10%'><w:anchorlock/><center>Buy</center></v:roundrect>"
    "<a href='mailto:x@y'>m</a><![endif]"
)


def test_outlook_conditional_comment_links(tracker: Tracker) -> None:
    out = rewrite_conditional(MSO, tracker.rewrite)
    assert tracker.links[0].url == "https://a.example/?x=1&y=2"  # entity decoded
    assert f'href="{BASE}/c/' in out and "a.example" not in out
    # Everything else is byte for byte what Outlook expects, unbalanced tags included.
    assert out.startswith("[if mso]><table><tr><td><v:roundrect xmlns:v=")
    assert "<w:anchorlock/>" in out and "href='mailto:x@y'" in out
    assert "</table>" not in out


def test_conditional_comments_in_a_document(tracker: Tracker) -> None:
    root = document.parse(
        f"<body><!--{MSO}--><!--[if !mso]><!--><a href='https://a.example/?x=1&amp;y=2'>"
        "Buy</a><!--<![endif]--><!-- a plain comment https://c.example --></body>"
    )
    rewrite_links(root, tracker)
    out = document.serialize(root)
    assert "a.example" not in out
    assert "https://c.example" in out  # an ordinary comment is not a link
    assert len(tracker.links) == 1  # the VML button and its HTML twin share an index
