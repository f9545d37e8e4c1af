"""Two server processes on one database: every action still runs exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from automation_harness import Mailbox, Server, World, eventually

Stage = tuple[World, Server]


async def test_two_servers_send_each_follow_up_once(
    world: Stage, smtp: tuple[Mailbox, str], tmp_path: Path
) -> None:
    w, first = world
    box = smtp[0]
    second = Server(first.db_url, first.smtp_url, tmp_path / "second.log")
    second.start()
    try:
        w.rule(
            trigger={"type": "opened"},
            actions=[
                {"type": "send_email", "subject": "Now", "html": "<p>now</p>"},
                {
                    "type": "send_email",
                    "subject": "Later",
                    "html": "<p>later</p>",
                    "delay_seconds": 1,
                },
                {"type": "add_score", "points": 1},
            ],
        )
        emails = [f"lead{i}@example.com" for i in range(20)]
        for email in emails:
            lead = await w.lead(email)
            message = await w.message(lead)
            await w.event(message, lead)
            await w.event(message, lead, client="again")
        await eventually(lambda: len(box.received) >= 2 * len(emails), timeout=30, what="mail")
        first.kill()  # and one of them dies: nothing is lost or repeated
        await asyncio.sleep(1.5)
        got = Counter((m["To"], m["Subject"]) for m in box.received)
        assert got == Counter({(e, s): 1 for e in emails for s in ("Now", "Later")})
    finally:
        second.stop()
