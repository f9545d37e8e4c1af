"""Turning a request into a `Hit`: one pass over the headers, nothing decoded."""

from __future__ import annotations

from time import time

from starlette.types import Scope

from mailbeacon.edge.client import ClientAddress
from mailbeacon.edge.privacy import Anonymizing
from mailbeacon.recorder import Hit, anonymize
from mailbeacon.tokens import Token


class HitMaker:
    def __init__(self, client: ClientAddress, anonymizing: Anonymizing | None = None) -> None:
        self.client = client
        self.proxied = bool(client.trusted)
        self.anonymizing = anonymizing or Anonymizing()

    def __call__(self, scope: Scope, token: Token, kind: str, link_index: int | None) -> Hit:
        """The hit from an ASGI request (lower-cased header names, the TCP peer)."""
        ua = lang = fwd = None
        for name, value in scope["headers"]:
            if name == b"user-agent":
                ua = value
            elif name == b"accept-language":
                lang = value
            elif name == b"x-forwarded-for":
                fwd = value if fwd is None else fwd + b"," + value
        peer = scope.get("client")
        ip = peer[0] if peer else None
        return self.hit(ua, lang, fwd, ip, scope["method"], token, kind, link_index)

    def hit(
        self,
        ua: bytes | None,
        lang: bytes | None,
        fwd: bytes | None,
        peer: str | None,
        method: str,
        token: Token,
        kind: str,
        link_index: int | None,
    ) -> Hit:
        """The hit from headers already picked out (`X-Forwarded-For` values joined)."""
        ip = self.client(peer, fwd) if self.proxied else peer
        if self.anonymizing(token.company_id):
            ip = anonymize(ip)  # before the hit exists anywhere but in this frame
        return Hit(
            time(),
            kind,
            token.company_id,
            token.message_id,
            token.lead_id,
            link_index,
            ip,
            ua,
            lang,
            method,
        )
