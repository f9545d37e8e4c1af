"""The values compose works with: who a message is for, how to instrument it, the result.

Frozen dataclasses, so a composed message can be passed around and compared in tests
without anyone changing it on the way to the transport.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

LinkKind = Literal["link", "unsubscribe", "honeypot", "forward"]
PixelPlacement = Literal["header", "body", "footer"]
PixelFormat = Literal["gif", "png"]

# Gmail clips a message whose HTML is larger than about 102 KB; what follows the cut
# (a footer pixel included) is only loaded if the reader clicks "view entire message".
GMAIL_CLIP_BYTES = 102 * 1024


@dataclass(frozen=True, slots=True)
class Recipient:
    """The lead a message is rendered for: the merge fields come from here."""

    id: int
    email: str
    first_name: str | None = None
    last_name: str | None = None
    # Custom fields (`leads.fields`): merge fields by their name, the built-ins win.
    fields: Mapping[str, str] | None = None
    # `leads.tracking`: False, and nothing in their mail tracks them, whatever the
    # campaign asks (see `Options.for_recipient`).
    tracking: bool = True
    # The engagement conditions the lead meets, of those the templates ask about
    # (`compose.blocks`: ("clicked", "pricing"), ...); fetched before rendering.
    meets: frozenset[tuple[str, str | int]] = frozenset()


@dataclass(frozen=True, slots=True)
class Link:
    """One stored link of a message: a tracked click redirects to `url`."""

    index: int
    url: str
    kind: LinkKind = "link"


@dataclass(frozen=True, slots=True)
class Options:
    """How a campaign (or a single message) wants to be instrumented."""

    pixel_placement: PixelPlacement = "body"
    pixel_format: PixelFormat = "gif"
    # UTM tags to add to every tracked link: keys source, medium, campaign, term, content
    # (source defaults to "mailbeacon", medium to "email"). None: the campaign did not
    # ask for them.
    utm: Mapping[str, str] | None = None
    # A visible "Forward to a friend" link in the footer. `{{forward_url}}` renders the
    # same URL wherever the author writes it, whether this is on or not.
    forward_link: bool = False
    honeypot: bool = True
    # A campaign can turn tracking off: no pixel without opens; links go straight to
    # their destination (and no honeypot) without clicks. Unsubscribing always works.
    track_opens: bool = True
    track_clicks: bool = True

    def for_recipient(self, recipient: Recipient) -> Options:
        """These options as `recipient`'s mail gets them: a lead who is not tracked gets
        neither a pixel nor tracked links, whatever the campaign asks."""
        if recipient.tracking:
            return self
        return replace(self, track_opens=False, track_clicks=False)


@dataclass(frozen=True, slots=True)
class Note:
    """What a reader wrote to the friend they forwarded a message to, and who they are
    (`intro`: "Ann Lee forwarded this email to you and wrote:")."""

    text: str
    intro: str


@dataclass(frozen=True, slots=True)
class Instrumented:
    """A message ready for MIME: bodies as they will be sent, its links and warnings."""

    subject: str
    html: str
    text: str
    links: tuple[Link, ...]
    warnings: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
