"""UTM tags: added when the campaign asks, never overwriting what a link has."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.compose.utm import add_utm

UTM = {"source": "news", "campaign": "spring", "content": "hero"}
EVERY = {
    "source": "news",
    "medium": "newsletter",
    "campaign": "spring",
    "term": "running shoes",
    "content": "hero",
}
ALL = "utm_source=news&utm_medium=email&utm_campaign=spring&utm_content=hero"


@pytest.mark.parametrize(
    ("url", "utm", "expected"),
    [
        ("https://a.example/", UTM, f"https://a.example/?{ALL}"),
        ("https://a.example/p?x=1#top", UTM, f"https://a.example/p?x=1&{ALL}#top"),
        (
            "https://a.example/?utm_source=partner&utm_medium=banner",
            UTM,
            "https://a.example/?utm_source=partner&utm_medium=banner"
            "&utm_campaign=spring&utm_content=hero",
        ),
        (
            "https://a.example/?q=a%20b&e=",
            {},
            "https://a.example/?q=a%20b&e=&utm_source=mailbeacon&utm_medium=email",
        ),
        (
            "https://a.example/",
            {"campaign": "Spring sale"},
            "https://a.example/?utm_source=mailbeacon&utm_medium=email&utm_campaign=Spring+sale",
        ),
        (  # every key the API accepts, medium and term included
            "https://a.example/",
            EVERY,
            "https://a.example/?utm_source=news&utm_medium=newsletter&utm_campaign=spring"
            "&utm_term=running+shoes&utm_content=hero",
        ),
        (  # the link's own medium and term win; the rest is added
            "https://a.example/?utm_medium=social&utm_term=boots",
            EVERY,
            "https://a.example/?utm_medium=social&utm_term=boots"
            "&utm_source=news&utm_campaign=spring&utm_content=hero",
        ),
    ],
)
def test_add_utm(url: str, utm: dict[str, str], expected: str) -> None:
    assert add_utm(url, utm) == expected


@given(
    existing=st.dictionaries(
        st.sampled_from(["utm_source", "utm_medium", "utm_campaign", "utm_content", "q"]),
        st.text(alphabet="abcXYZ09-", min_size=1, max_size=8),
    )
)
def test_existing_tags_always_win(existing: dict[str, str]) -> None:
    query = "&".join(f"{k}={v}" for k, v in existing.items())
    tagged = parse_qs(urlsplit(add_utm(f"https://a.example/?{query}", UTM)).query)
    for key, value in existing.items():
        assert tagged[key] == [value]
    assert set(tagged) >= {"utm_source", "utm_medium", "utm_campaign", "utm_content"}


def test_rewritten_links_carry_medium_and_term(compose: Any) -> None:
    """Through compose: the stored destination of each tracked link (what /c/ redirects
    to) has every tag, and a link's own utm_medium still wins."""
    html = (
        '<a href="https://shop.example/a">a</a>'
        '<a href="https://shop.example/b?utm_medium=partner">b</a>'
    )
    out = compose(html, utm=EVERY)
    assert [link.url for link in out.links if link.kind == "link"] == [
        "https://shop.example/a?utm_source=news&utm_medium=newsletter&utm_campaign=spring"
        "&utm_term=running+shoes&utm_content=hero",
        "https://shop.example/b?utm_medium=partner&utm_source=news&utm_campaign=spring"
        "&utm_term=running+shoes&utm_content=hero",
    ]
    assert "shop.example" not in out.html  # both are /c/ links in the mail
