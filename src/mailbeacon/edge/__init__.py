"""The tracking edge: the raw ASGI hot path for pixels, clicks, unsubscribes, forwards.

`create_edge` takes every collaborator explicitly; `mailbeacon.app` builds them.
"""

from __future__ import annotations

from collections.abc import Iterable

from mailbeacon.edge.actions import Actions, ActionUnavailable, Friend
from mailbeacon.edge.app import Edge
from mailbeacon.edge.client import ClientAddress, Network
from mailbeacon.edge.forms import FormNonce, Forms, RateLimit
from mailbeacon.edge.hits import HitMaker
from mailbeacon.edge.links import Link, LinkSource
from mailbeacon.edge.privacy import Anonymizing
from mailbeacon.recorder import Recorder
from mailbeacon.tokens import Signer


def create_edge(
    *,
    signer: Signer,
    recorder: Recorder,
    links: LinkSource,
    actions: Actions,
    form_secret: bytes,
    trusted_proxies: Iterable[Network] = (),
    forwards_per_hour: int = 5,
    anonymizing: Anonymizing | None = None,
) -> Edge:
    """The edge ASGI app. `form_secret` signs form nonces (use a secret key's bytes);
    `anonymizing` says whose readers' addresses are cut at capture (edge.privacy)."""
    make_hit = HitMaker(ClientAddress(trusted_proxies), anonymizing)
    forms = Forms(
        recorder=recorder,
        actions=actions,
        make_hit=make_hit,
        nonce=FormNonce(form_secret),
        forward_limit=RateLimit(forwards_per_hour, 3600),
    )
    return Edge(signer=signer, recorder=recorder, links=links, forms=forms, make_hit=make_hit)


__all__ = [
    "ActionUnavailable",
    "Actions",
    "Anonymizing",
    "ClientAddress",
    "Edge",
    "Friend",
    "Link",
    "LinkSource",
    "create_edge",
]
