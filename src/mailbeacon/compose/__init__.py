"""Compose: render a message for one lead, with its pixel, tracked links and headers.

Pure functions; the store and the transport live in `delivery`. The usual call:

    inst = instrument(subject=..., html=..., text=None, recipient=Recipient(...),
                      message_id=..., company_id=..., signer=..., settings=...)
    msg = build_mime(inst, settings)          # an EmailMessage, DKIM-signed if configured
"""

from mailbeacon.compose.instrument import instrument
from mailbeacon.compose.mime import as_bytes, build_mime, sent_headers
from mailbeacon.compose.model import GMAIL_CLIP_BYTES, Instrumented, Link, Note, Options, Recipient

__all__ = [
    "GMAIL_CLIP_BYTES",
    "Instrumented",
    "Link",
    "Note",
    "Options",
    "Recipient",
    "as_bytes",
    "build_mime",
    "instrument",
    "sent_headers",
]
