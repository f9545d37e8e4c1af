"""An edge of the multi-machine mode needs NATS, not PostgreSQL, to answer a pixel."""

from __future__ import annotations

import http.client
from pathlib import Path

import nats
import pytest

from mailbeacon.pipeline.jetstream import decode_hit
from mailbeacon.settings.secret_keys import parse_keys
from mailbeacon.tokens import Kind, Signer, Token
from testkit.cluster import SECRET, Installation, NatsServer, environment, free_port

pytestmark = pytest.mark.slow


async def test_a_pixel_is_answered_and_kept_while_the_database_is_down(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    nowhere = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone"
    inst = Installation(environment(nowhere, nats_server.url, 8), tmp_path)
    try:
        port = inst.start_edge()
        token = Signer(list(parse_keys(SECRET))).sign(Token(Kind.OPEN, 4, 40, 400))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", f"/o/{token}.gif", headers={"User-Agent": "Thunderbird/128"})
        answer = conn.getresponse()
        assert answer.status == 200 and answer.getheader("Content-Type") == "image/gif"
        answer.read()
        conn.close()
    finally:
        inst.stop()
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("MAILBEACON_HITS")
        assert info.state.messages == 1
        msg = await js.get_msg("MAILBEACON_HITS", info.state.last_seq)
        hit, _ = decode_hit(msg.data, msg.seq, False)
        assert (hit.company_id, hit.message_id, hit.lead_id) == (4, 40, 400)
    finally:
        await nc.close()
    assert "database unreachable" in (tmp_path / "edge-0.log").read_text()
