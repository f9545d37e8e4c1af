"""A webhook receiver on a real socket that can be killed and brought back on its port
(for the automation and page tests).

It keeps every POST it was sent, with whether its signature verified, and answers 200.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mailbeacon.automation.webhooks import verify


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    delivery: int
    event_id: int | None
    lead_id: int
    type: str
    signed: bool
    body: dict[str, Any]


@dataclass
class Receiver:
    secret: str
    port: int = field(default_factory=free_port)
    got: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = json.loads(raw)
                signed = verify(receiver.secret, raw, self.headers["X-Mailbeacon-Signature"])
                event = body["event"]
                receiver.got.append(
                    Received(
                        int(self.headers["X-Mailbeacon-Delivery"]), event["id"],
                        event["lead_id"], event["type"], signed, body,
                    )
                )  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kill(self) -> None:
        """Down: the port refuses connections until `start` again."""
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None

    def once_each(self) -> dict[int, Received]:
        """What the receiver keeps after dropping repeated delivery ids (as documented)."""
        kept: dict[int, Received] = {}
        for r in self.got:
            kept.setdefault(r.delivery, r)
        return kept
