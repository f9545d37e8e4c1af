"""The plain-text alternative: generated from the HTML when none is given, links tracked.

Plain text cannot load an image, so a text-only reader never records an open; their
clicks still count (and imply an open, which enrichment infers).
"""

from __future__ import annotations

import re

import html2text

from mailbeacon.compose.tracking import Tracker

# Stops at whitespace, quotes, brackets and markdown's `](...)`; trailing punctuation
# belongs to the sentence, not the URL.
_URL = re.compile(r"""https?://[^\s<>"'()\[\]]+""", re.IGNORECASE)
_TRAILING = ".,;:!?"


def html_to_text(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0  # never wrap: a wrapped URL is a broken link
    converter.ignore_images = True
    converter.unicode_snob = True
    return converter.handle(html).strip() + "\n"


def track_text_links(text: str, tracker: Tracker) -> str:
    """Every http(s) URL of `text` replaced by its tracked `/c/` URL."""

    def replace(m: re.Match[str]) -> str:
        url = m[0].rstrip(_TRAILING)
        tracked = tracker.rewrite(url)
        return m[0] if tracked is None else tracked + m[0][len(url) :]

    return _URL.sub(replace, text)


def add_footer(text: str, unsubscribe_url: str | None, forward_url: str | None) -> str:
    """`text` with the footer links it lacks appended after a signature separator."""
    lines = []
    if forward_url and forward_url not in text:
        lines.append(f"Forward to a friend: {forward_url}")
    if unsubscribe_url and unsubscribe_url not in text:
        lines.append(f"Unsubscribe: {unsubscribe_url}")
    if not lines:
        return text
    return text.rstrip("\n") + "\n\n-- \n" + "\n".join(lines) + "\n"
