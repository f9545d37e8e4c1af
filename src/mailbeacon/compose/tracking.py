"""The tracked URLs of one message, and the table of links they stand for.

A `Tracker` is made per message (its ids are signed into every token). It decides which
URLs are tracked, hands out `/c/`, `/o/`, `/u/` and `/f/` URLs, and remembers each
destination by index: that list is what the store keeps and what a click may redirect
to, so a click can never be sent anywhere that was not in the email.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from mailbeacon.compose.model import Link, LinkKind, PixelFormat
from mailbeacon.compose.utm import add_utm
from mailbeacon.tokens import Kind, Signer, Token

TRACKED_SCHEMES = ("http", "https")
# Paths of the edge: a URL under one of these is ours already and is never re-wrapped.
EDGE_PATHS = ("/c/", "/o/", "/u/", "/f/")


class Tracker:
    """Signs tracking URLs for one message and collects its links by index."""

    def __init__(
        self,
        *,
        base_url: str,
        signer: Signer,
        company_id: int,
        message_id: int,
        lead_id: int,
        utm: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._signer = signer
        self._ids = (company_id, message_id, lead_id)
        self._utm = utm
        self._links: list[Link] = []
        # Identical destinations share an index, so a report counts "the pricing link"
        # once however many times the email repeats it.
        self._by_url: dict[tuple[str, str], int] = {}

    @property
    def links(self) -> tuple[Link, ...]:
        return tuple(self._links)

    def _token(self, kind: Kind, index: int = 0) -> str:
        company_id, message_id, lead_id = self._ids
        return self._signer.sign(Token(kind, company_id, message_id, lead_id, index))

    def _store(self, url: str, kind: LinkKind) -> int:
        key = (url, kind)
        if key not in self._by_url:
            self._by_url[key] = len(self._links)
            self._links.append(Link(len(self._links), url, kind))
        return self._by_url[key]

    def is_ours(self, url: str) -> bool:
        """True for URLs of our edge (already tracked, pixel, unsubscribe, forward)."""
        return any(url.startswith(self.base_url + path) for path in EDGE_PATHS)

    def should_track(self, url: str) -> bool:
        """Only absolute http(s) links that are not ours: mailto:, tel:, #anchors and
        relative links are left as they are."""
        if not url or self.is_ours(url):
            return False
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unbalanced IPv6 bracket: not a link we can vouch for
            return False
        return parts.scheme.lower() in TRACKED_SCHEMES and bool(parts.netloc)

    def click_url(self, url: str) -> str:
        """The `/c/` URL for `url` (stored with UTM tags when the campaign asks)."""
        destination = add_utm(url, self._utm) if self._utm else url
        return f"{self.base_url}/c/{self._token(Kind.CLICK, self._store(destination, 'link'))}"

    def rewrite(self, url: str) -> str | None:
        """The tracked URL for a link found in the email, or None to leave it alone."""
        url = url.strip()
        return self.click_url(url) if self.should_track(url) else None

    def honeypot_url(self) -> str:
        # A bot that follows it lands on our home page; people never see the link.
        index = self._store(self.base_url + "/", "honeypot")
        return f"{self.base_url}/c/{self._token(Kind.CLICK, index)}"

    def pixel_url(self, fmt: PixelFormat = "gif") -> str:
        return f"{self.base_url}/o/{self._token(Kind.OPEN)}.{fmt}"

    def _edge_url(self, path: str, kind: Kind, stored: LinkKind) -> str:
        # The index the token carries is the row the URL is stored under.
        index = len(self._links)
        url = f"{self.base_url}/{path}/{self._token(kind, index)}"
        self._store(url, stored)
        return url

    def unsubscribe_url(self) -> str:
        return self._edge_url("u", Kind.UNSUBSCRIBE, "unsubscribe")

    def forward_url(self) -> str:
        return self._edge_url("f", Kind.FORWARD, "forward")
