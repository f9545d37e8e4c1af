"""A lead who is not tracked, in automation: a follow-up their earlier click queued goes
out with no pixel and no tracked link (the lead's setting when it is sent is what
counts), and a `not_opened` reminder never chases mail that had no pixel to open."""

from __future__ import annotations

import asyncio
from email.message import Message

from automation_harness import Mailbox, Server, World, eventually

from mailbeacon.store.schema import messages

Stage = tuple[World, Server]


def html_part(mail: Message) -> str:
    for part in mail.walk():
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/html part")


async def test_a_follow_up_to_a_lead_who_stopped_tracking_is_untracked(
    world: Stage, smtp: tuple[Mailbox, str]
) -> None:
    w, server = world
    box = smtp[0]
    w.rule(
        trigger={"type": "clicked", "url_contains": "pricing"},
        actions=[
            {
                "type": "send_email",
                "subject": "About our pricing",
                "html": "<p>Questions about <a href='https://acme.test/pricing'>pricing</a>?</p>",
                "delay_seconds": 2,
            }
        ],
    )
    tracked, stopped = await w.lead("tia@example.com"), await w.lead("ugo@example.com")
    for lead in (tracked, stopped):
        await w.event(await w.message(lead), lead, type="click", url="https://acme.test/pricing")
    # Ugo asks not to be tracked after his click, before the follow-up leaves.
    patched = w.api.patch(f"/api/v1/leads/{stopped}", json={"tracking": False})
    assert patched.status_code == 200 and patched.json()["tracking"] is False
    await eventually(lambda: len(box.received) == 2, timeout=20, what="both follow-ups")

    base = server.url
    ugo, tia = html_part(box.to("ugo@example.com")[0]), html_part(box.to("tia@example.com")[0])
    assert f"{base}/o/" not in ugo and f"{base}/c/" not in ugo
    assert 'href="https://acme.test/pricing"' in ugo and f"{base}/u/" in ugo
    assert f"{base}/o/" in tia and f"{base}/c/" in tia
    assert box.to("ugo@example.com")[0]["List-Unsubscribe"].startswith(f"<{base}/u/")


async def test_not_opened_never_chases_mail_without_a_pixel(
    world: Stage, smtp: tuple[Mailbox, str]
) -> None:
    w, _ = world
    box = smtp[0]
    w.rule(
        trigger={"type": "not_opened", "campaign_id": w.campaign_id, "within_seconds": 1},
        actions=[{"type": "send_email", "subject": "Did you see this?", "html": "<p>ping</p>"}],
    )
    silent, untracked = await w.lead("sam@example.com"), await w.lead("una@example.com")
    await w.message(silent)
    no_pixel = await w.message(untracked)
    async with w.db.begin() as conn:
        await conn.execute(
            messages.update()
            .where(messages.c.id == no_pixel)
            .values(track_opens=False, track_clicks=False)
        )
    await eventually(lambda: box.to("sam@example.com"), timeout=20, what="the reminder")
    await asyncio.sleep(1.5)  # the same scan saw Una's message; time for a stray send
    assert [m["To"] for m in box.received] == ["sam@example.com"]
