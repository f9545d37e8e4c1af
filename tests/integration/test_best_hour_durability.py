"""A best-hour campaign through the real server, killed with SIGKILL mid-window.

Six leads have a habit (three human opens at one hour each), two have none and get the
company's hour. An "hour" lasts one second here (`MAILBEACON_SCHEDULE_HOUR_SECONDS=1`,
the same arithmetic as production's 3600), so the 24-hour window passes in 24 seconds.
The whole server process group is killed with SIGKILL after the first copies went and
before the others were due, then started again: every lead gets exactly one mail, none
before its scheduled time, and the copies that were waiting at the kill go out after it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from live_server import MAILBEACON, _cli, free_port

from mailbeacon.compose.headers import message_id_of
from mailbeacon.delivery.besthour import EPOCH, local_hour
from mailbeacon.store.schema import events, messages

pytestmark = pytest.mark.slow
HABITS = (4, 7, 10, 13, 16, 19)  # seconds ("hours") after the send call, one per lead
COMPANY = 21  # the company's usual "hour", from its other readers


@dataclass
class Arrivals:
    """Every DATA the SMTP server accepted: (time, Message-ID, To), duplicates kept."""

    mails: list[tuple[dt.datetime, str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail: Message = email.message_from_bytes(envelope.original_content)
        at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self.mails.append((at, str(mail["Message-ID"]), str(mail["To"])))
        return "250 OK"


@pytest.fixture
def arrivals() -> Iterator[tuple[Arrivals, str]]:
    box = Arrivals()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield box, f"smtp://127.0.0.1:{controller.port}"
    finally:
        controller.stop()


def start(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [MAILBEACON, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own group: SIGKILL reaches the pipeline process too
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/api/openapi.json", timeout=1).is_success:
                return proc
        assert proc.poll() is None, "the server exited while starting"
        time.sleep(0.1)
    raise AssertionError("the server did not start in 30 s")


def kill_9(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def at_slot(slot: int, days_back: int) -> dt.datetime:
    """A past moment whose one-second "hour of the day" is `slot`."""
    day = int((dt.datetime.now(dt.UTC).replace(tzinfo=None) - EPOCH).total_seconds()) // 24
    return EPOCH + dt.timedelta(seconds=(day - days_back) * 24 + slot % 24, microseconds=300)


def test_kill_9_mid_window_neither_loses_nor_repeats_a_send(
    sqlite_url: str, arrivals: tuple[Arrivals, str], tmp_path: Path
) -> None:
    box, smtp_url = arrivals
    port = free_port()
    env = {
        **os.environ,
        "MAILBEACON_DATABASE_URL": sqlite_url,
        "MAILBEACON_BASE_URL": f"http://127.0.0.1:{port}",
        "MAILBEACON_SECRET_KEYS": "live1:integration-secret",
        "MAILBEACON_SMTP_URL": smtp_url,
        "MAILBEACON_VAR_DIR": str(tmp_path / "var"),
        "MAILBEACON_SCHEDULE_HOUR_SECONDS": "1",
    }
    _cli(env, "company", "create", "Acme", "--plan", "essential")
    key = _cli(
        env, "user", "create", "--company", "1", "--email", "mm@acme.example.com",
        "--role", "marketing_manager", "--password", "marketing-pass-1",
    )["api_key"]  # fmt: skip
    proc = start(env, port)
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    engine = sa.create_engine(sqlite_url)
    try:
        names = [f"habit{i}" for i in range(len(HABITS))] + ["new1", "new2", "other"]
        ids = {}
        for name in names:
            r = api.post("/api/v1/leads", json={"email": f"{name}@example.com"})
            assert r.status_code == 201, r.text
            ids[name] = r.json()["id"]
        list_id = api.post("/api/v1/lists", json={"name": "All"}).json()["id"]
        members = [ids[n] for n in names if n != "other"]
        assert api.post(f"/api/v1/lists/{list_id}/leads", json={"lead_ids": members}).is_success

        r = api.post(
            "/api/v1/campaigns",
            json={"name": "Best hour", "subject": "Hi", "html": "<p>Hello</p>", "list_id": list_id},
        )
        campaign = r.json()["id"]
        # The pipeline process starts after the API answers: wait until it sends at all
        # (an empty campaign goes straight to `sent`), so the window starts on time.
        empty = api.post("/api/v1/lists", json={"name": "Nobody"}).json()["id"]
        warm = {"name": "Warm-up", "subject": "Hi", "html": "<p>Hi</p>", "list_id": empty}
        warm_id = api.post("/api/v1/campaigns", json=warm).json()["id"]
        assert api.post(f"/api/v1/campaigns/{warm_id}/send").status_code == 202
        deadline = time.monotonic() + 60
        while api.get(f"/api/v1/campaigns/{warm_id}").json()["status"] != "sent":
            assert time.monotonic() < deadline, "the campaign sender never started"
            time.sleep(0.1)

        now_slot = int((dt.datetime.now(dt.UTC).replace(tzinfo=None) - EPOCH).total_seconds())
        want = {ids[f"habit{i}"]: (now_slot + s) % 24 for i, s in enumerate(HABITS)}
        want |= {ids["new1"]: (now_slot + COMPANY) % 24, ids["new2"]: (now_slot + COMPANY) % 24}
        human = {"type": "open", "company_id": 1, "message_id": 0, "verdict": "human"}
        human |= {"reason": "", "inferred": False, "forwarded": False}
        rows = [
            human | {"lead_id": ids[f"habit{i}"], "at": at_slot(want[ids[f"habit{i}"]], d)}
            for i in range(len(HABITS))
            for d in (1, 2, 3)
        ]
        # Two opens (no habit yet) and machine prefetches (no sign of a person) for new1;
        # the company's other reader opens at its usual hour.
        rows += [human | {"lead_id": ids["new1"], "at": at_slot(now_slot + 1, d)} for d in (1, 2)]
        rows += [
            human | {"lead_id": ids["new1"], "at": at_slot(now_slot + 2, d), "verdict": "prefetch"}
            for d in range(1, 9)
        ]
        rows += [human | {"lead_id": ids["other"], "at": at_slot(now_slot + COMPANY, d)}
                 for d in range(1, 9)]  # fmt: skip
        with engine.begin() as conn:
            conn.execute(events.insert(), rows)

        schedule = {"best_hour": True, "within_hours": 24}
        sent_call = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        r = api.post(f"/api/v1/campaigns/{campaign}/send", json={"schedule": schedule})
        assert r.status_code == 202, r.text

        # Kill once the first copies went and before the later ones are due.
        deadline = time.monotonic() + 20
        while len(box.mails) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(box.mails) >= 2, "the first best-hour copies never went"
        # Not the instant the SMTP server said 250: between that and the sender's commit,
        # a kill repeats that one mail (under the same Message-ID: see
        # tests/delivery/test_scheduled_sends.py). Half way to the next copy's time,
        # the sender is waiting, as it mostly is.
        time.sleep(1.5)
        kill_9(proc)
        killed_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        before_kill = len(box.mails)
        with engine.connect() as conn:
            planned = {
                r.lead_id: r
                for r in conn.execute(
                    sa.select(messages.c.lead_id, messages.c.id, messages.c.scheduled_at).where(
                        messages.c.campaign_id == campaign
                    )
                )
            }
            waiting = conn.execute(
                sa.select(sa.func.count()).where(
                    messages.c.campaign_id == campaign, messages.c.status == "scheduled"
                )
            ).scalar_one()
        assert waiting >= 3, f"only {waiting} copies were waiting at the kill: not mid-window"

        # Each lead's copy was planned at their hour (the company's for those without a
        # habit), within the window.
        assert set(planned) == set(want)
        for lead_id, row in planned.items():
            assert local_hour(row.scheduled_at, None, 1) == want[lead_id], lead_id
            assert sent_call <= row.scheduled_at < sent_call + dt.timedelta(seconds=25)

        proc = start(env, port)
        deadline = time.monotonic() + 60
        while len(box.mails) < len(want) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # a repeated send would arrive now
        progress = api.get(f"/api/v1/campaigns/{campaign}/progress").json()
    finally:
        kill_9(proc)
        engine.dispose()

    per_lead = Counter(to.split("@")[0].strip("<") for _, _, to in box.mails)
    assert per_lead == Counter({n: 1 for n in names if n != "other"}), box.mails
    ids_seen = Counter(mid for _, mid, _ in box.mails)
    assert all(n == 1 for n in ids_seen.values()), ids_seen
    by_id = {row.id: row for row in planned.values()}
    for arrived, mid, _to in box.mails:
        message_id = message_id_of(mid)
        assert message_id in by_id, mid
        assert arrived >= by_id[message_id].scheduled_at, (mid, arrived)
    assert before_kill < len(box.mails)
    assert any(arrived > killed_at for arrived, _, _ in box.mails)
    assert (progress["status"], progress["sent"], progress["scheduled"]) == ("sent", 8, 0)
