"""Repeat opens: every open is an event, except a proxy's refetch of the same image.

Rule: an open judged `proxy` or `prefetch` folds into the previous open event of the
same message from the same source (same address and same client) when it comes within
`FOLD_SECONDS` of it. Folded hits stay in `hits` (raw hits keep everything); they just
add no event. Human opens never fold: a reader opening the mail twice opened it twice.
The window runs from the last *kept* open, so a proxy refetching every 30 s for ten
minutes counts once every `FOLD_SECONDS`, not once in all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

FOLD_SECONDS = 60.0
FOLDING_VERDICTS = frozenset({"proxy", "prefetch"})

Source = tuple[str | None, str | None]  # (ip, client)


@dataclass(slots=True)
class RepeatOpens:
    """The last kept open per source of one message."""

    last_kept: dict[Source, dt.datetime] = field(default_factory=dict)

    def folds(self, source: Source, at: dt.datetime, verdict: str) -> bool:
        """True when this open adds no event; otherwise it is remembered as kept."""
        previous = self.last_kept.get(source)
        if (
            verdict in FOLDING_VERDICTS
            and previous is not None
            and 0 <= (at - previous).total_seconds() < FOLD_SECONDS
        ):
            return True
        self.kept(source, at)
        return False

    def kept(self, source: Source, at: dt.datetime) -> None:
        previous = self.last_kept.get(source)
        if previous is None or at > previous:
            self.last_kept[source] = at
