"""Forward to a friend, in delivery: a campaign with `forward_link` puts the /f/ link in
every mail, and the friend's copy belongs to the campaign, carries the forwarder's note,
and is composed for the friend (their own tokens), over a real SMTP round trip."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from typing import Any

import lxml.html
import sqlalchemy as sa

from mailbeacon.delivery import Outbox, create_message, send_campaign, send_forward_copy
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.schema import campaigns, list_members, message_links, messages
from mailbeacon.tokens import Kind, Signer

HTML = '<p>Hi {{first_name}}, <a href="https://shop.example/sale">the sale</a></p>'


def received(outbox: Outbox) -> list[EmailMessage]:
    out = []
    for path in outbox.messages():
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def body(msg: EmailMessage, subtype: str) -> str:
    part = msg.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")  # as sent: CRLF


async def forward_url(db: Database, message_id: int) -> str:
    async with db.connect() as conn:
        return str(
            (
                await conn.execute(
                    sa.select(message_links.c.url).where(
                        message_links.c.message_id == message_id,
                        message_links.c.kind == "forward",
                    )
                )
            ).scalar_one()
        )


async def message_row(db: Database, message_id: int) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(sa.select(messages).where(messages.c.id == message_id))).one()


async def test_campaign_with_forward_link_and_the_friends_copy(
    db: Database,
    settings: Settings,
    signer: Signer,
    outbox: Outbox,
    make_lead: Any,
    make_campaign: Any,
    company_id: int,
) -> None:
    settings = settings.with_(smtp_url=outbox.url)
    ann = await make_lead("ann@example.com", first_name="Ann", last_name="Lee")
    campaign_id = await make_campaign([ann], html=HTML, forward_link=True)
    assert (await send_campaign(db, settings, signer, company_id, campaign_id)).sent == 1

    [mail] = received(outbox)
    async with db.connect() as conn:
        ann_msg = (await conn.execute(sa.select(messages.c.id))).scalar_one()
    url = await forward_url(db, ann_msg)
    assert url.startswith(f"{settings.base_url}/f/")
    assert signer.verify(url.rsplit("/", 1)[1]).kind is Kind.FORWARD
    footer = lxml.html.document_fromstring(body(mail, "html")).find_class("mailbeacon-footer")
    labels = [(a.text, a.get("href")) for a in footer[0].iter("a")]
    assert labels[0] == ("Forward to a friend", url) and labels[1][0] == "Unsubscribe"
    assert f"[Forward to a friend]({url})" in body(mail, "plain")  # text made from the HTML
    assert (await message_row(db, ann_msg)).forward_link is True

    friend = await make_lead("bo@example.com", first_name="Bo")
    copy = await send_forward_copy(
        db,
        settings,
        signer,
        company_id=company_id,
        message_id=ann_msg,
        friend_lead_id=friend,
        note="You need these <shoes> & more\nsee you",
    )
    assert copy is not None and copy["status"] == "sent"
    row = await message_row(db, copy["id"])
    assert (row.campaign_id, row.forwarded_from_message_id, row.lead_id) == (
        campaign_id,
        ann_msg,
        friend,
    )
    assert row.forward_link is True  # the friend may forward it on in turn
    friend_mail = received(outbox)[1]
    assert friend_mail["To"] == "Bo <bo@example.com>"
    assert (mail["Subject"], friend_mail["Subject"]) == ("Hi Ann", "Hi Bo")
    html = body(friend_mail, "html")
    [note] = lxml.html.document_fromstring(html).find_class("mailbeacon-note")
    assert [p.text for p in note] == [
        "Ann Lee forwarded this email to you and wrote:",
        "You need these <shoes> & more\nsee you",
    ]
    assert "You need these &lt;shoes&gt; &amp; more" in html
    assert body(friend_mail, "plain").startswith(
        "Ann Lee forwarded this email to you and wrote:\nYou need these <shoes> & more\nsee you\n"
    )
    # The friend's own tokens: their pixel and forward link name their message and lead.
    friend_fwd = await forward_url(db, copy["id"])
    token = signer.verify(friend_fwd.rsplit("/", 1)[1])
    assert (token.message_id, token.lead_id) == (copy["id"], friend)
    assert friend_fwd in html and url not in html


async def test_no_note_no_note_block_and_a_suppressed_friend_gets_nothing(
    db: Database,
    settings: Settings,
    signer: Signer,
    outbox: Outbox,
    make_lead: Any,
    company_id: int,
) -> None:
    settings = settings.with_(smtp_url=outbox.url)
    ann = await make_lead("ann@example.com")
    sent = await create_message(
        db, settings, signer, company_id=company_id, lead_id=ann, subject="Hi", html=HTML
    )
    assert sent["forward_link"] is False  # no campaign, not asked: off
    friend = await make_lead("bo@example.com")
    args = {"company_id": company_id, "message_id": sent["id"]}
    copy = await send_forward_copy(db, settings, signer, friend_lead_id=friend, **args)
    assert copy is not None and copy["campaign_id"] is None
    assert "mailbeacon-note" not in copy["html"] and copy["forward_link"] is False
    gone = await make_lead("gone@example.com", status="unsubscribed")
    assert await send_forward_copy(db, settings, signer, friend_lead_id=gone, **args) is None
    assert len(outbox.messages()) == 2


async def test_message_forward_link_overrides_the_campaign(
    db: Database,
    settings: Settings,
    signer: Signer,
    make_lead: Any,
    make_campaign: Any,
    company_id: int,
) -> None:
    ann = await make_lead("ann@example.com")
    campaign_id = await make_campaign([ann], html=HTML, forward_link=True)
    common = {"company_id": company_id, "lead_id": ann, "subject": "Hi", "html": HTML}
    common |= {"campaign_id": campaign_id, "send": False}
    inherited = await create_message(db, settings, signer, **common)
    off = await create_message(db, settings, signer, forward_link=False, **common)
    assert inherited["forward_link"] is True and "Forward to a friend" in inherited["html"]
    assert off["forward_link"] is False and "Forward to a friend" not in off["html"]
    assert [k["kind"] for k in off["links"]].count("forward") == 0
    assert (await message_row(db, off["id"])).forward_link is False


async def test_a_friend_on_the_list_still_gets_their_own_campaign_mail(
    db: Database,
    settings: Settings,
    signer: Signer,
    outbox: Outbox,
    make_lead: Any,
    make_campaign: Any,
    company_id: int,
) -> None:
    """The friend's forwarded copy has the campaign's id; a send resumed after it must
    still mail the friend as a lead of the list."""
    settings = settings.with_(smtp_url=outbox.url)
    ann = await make_lead("ann@example.com")
    bo = await make_lead("bo@example.com")
    campaign_id = await make_campaign([ann], html=HTML)
    await send_campaign(db, settings, signer, company_id, campaign_id)
    async with db.connect() as conn:
        ann_msg = (await conn.execute(sa.select(messages.c.id))).scalar_one()
    args = {"company_id": company_id, "message_id": ann_msg, "friend_lead_id": bo}
    assert await send_forward_copy(db, settings, signer, **args) is not None
    async with db.begin() as conn:
        list_id = (
            await conn.execute(sa.select(campaigns.c.list_id).where(campaigns.c.id == campaign_id))
        ).scalar_one()
        await conn.execute(
            list_members.insert().values(
                list_id=list_id, lead_id=bo, company_id=company_id, added_at=now()
            )
        )
        await conn.execute(
            sa.update(campaigns).where(campaigns.c.id == campaign_id).values(status="sending")
        )
    resumed = await send_campaign(db, settings, signer, company_id, campaign_id)
    assert (resumed.sent, resumed.skipped, resumed.failed) == (2, 0, 0)
    async with db.connect() as conn:
        rows = await conn.execute(
            sa.select(messages.c.lead_id, messages.c.forwarded_from_message_id).order_by(
                messages.c.id
            )
        )
        assert rows.all() == [(ann, None), (bo, ann_msg), (bo, None)]
    assert len(outbox.messages()) == 3
