"""A local SMTP outbox (aiosmtpd): every mail it receives becomes a `.eml` file.

`make run` points `MAILBEACON_SMTP_URL` at it, so a newcomer's first campaign lands in
`var/outbox/` where the dashboard (or any mail client) can open it, and the first
tracked open is one click away. It accepts everything and relays nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

# The names `_SaveToDir` gives its files: a plain file name, no path tricks.
MAIL_NAME = re.compile(r"^[\w.-]+\.eml$")


def read_mail(path: Path) -> EmailMessage:
    """One saved mail, parsed (headers decoded, bodies reachable with get_body)."""
    with path.open("rb") as f:
        return BytesParser(policy=policy.default).parse(f)  # type: ignore[return-value]


def newest_mails(directory: Path, limit: int) -> list[Path]:
    """The `limit` newest saved mails, newest first (file names start with the time)."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*.eml"), reverse=True)[:limit]


def mail_path(directory: Path, name: str) -> Path | None:
    """The saved mail called `name`, or None for a name that is not one of ours."""
    path = directory / name
    return path if MAIL_NAME.match(name) and path.is_file() else None


class _SaveToDir:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        # Write then rename: a reader listing the folder never sees half a mail.
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(envelope.original_content or envelope.content)
        tmp.rename(path)
        return "250 Message accepted for delivery"


class Outbox:
    """A running outbox; `stop()` shuts it down. Runs on a thread of its own."""

    def __init__(self, controller: Controller, directory: Path) -> None:
        self._controller = controller
        self.directory = directory
        self.host: str = controller.hostname
        self.port: int = controller.port

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def messages(self) -> list[Path]:
        """The received mails, oldest first."""
        return sorted(self.directory.glob("*.eml"))

    def stop(self) -> None:
        self._controller.stop()


def start_outbox(host: str, port: int, directory: Path | str) -> Outbox:
    """Start an outbox listening on host:port that stores mail under `directory`."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    controller = Controller(_SaveToDir(path), hostname=host, port=port)
    controller.start()
    return Outbox(controller, path)
