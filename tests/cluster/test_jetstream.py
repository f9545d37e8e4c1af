"""The hits stream: partitions by lead, the wire form of a hit, hit ids, and the edge's
recorder against a real NATS server (stopped and started again where it matters)."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest

from mailbeacon.pipeline.jetstream import (
    ID_BASE,
    HitIds,
    decode_hit,
    encode_hit,
    ensure_stream,
    id_store,
    partition_of,
    subject,
)
from mailbeacon.recorder import RecorderUnavailable, open_recorder
from mailbeacon.recorder.batch import Hit
from mailbeacon.recorder.jetstream import JetStreamRecorder
from mailbeacon.settings import Settings


def _hit(lead: int = 7, kind: str = "open") -> Hit:
    return Hit(time.time(), kind, 3, 11, lead, None, "81.2.69.160", b"Mozilla/5.0 x", b"en", "GET")


def test_a_lead_always_lands_in_the_same_partition_on_every_machine() -> None:
    # crc32, not hash(): these values are the same in every process and release
    # (a change here moves leads between partitions: their order would break mid-flight)
    assert [partition_of(1, lead, 8) for lead in range(1, 9)] == [6, 4, 2, 1, 7, 5, 3, 2]
    assert partition_of(2, 1, 8) == 7
    spread = {partition_of(1, lead, 8) for lead in range(1000)}
    assert spread == set(range(8))  # every partition gets leads


def test_a_hit_survives_the_wire_as_enrich_reads_it() -> None:
    hit = _hit()._replace(user_agent=b"Mozilla/5.0 \xff broken", ip="81.2.69.160")
    stored, row = decode_hit(encode_hit(ID_BASE + 5, hit), seq=42, anonymize_ip=True)
    assert stored.id == ID_BASE + 5 and stored.seq == 42 and stored.lead_id == 7
    assert stored.user_agent == "Mozilla/5.0 \ufffd broken"  # decoded as the table stores it
    assert stored.ip == "81.2.69.0"  # the server-wide setting anonymises here too
    assert row[0] == ID_BASE + 5 and row[1] == stored.at
    with pytest.raises(ValueError):
        decode_hit(b"\x93\x01\x02\x03", 1, False)


async def test_hit_ids_never_collide_between_edges(nats_server) -> None:  # type: ignore[no-untyped-def]
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        kv = await id_store(js, Settings(nats_url=nats_server.url))
        edges = [HitIds(kv, block=50) for _ in range(4)]
        await asyncio.gather(*(e.start() for e in edges))
        taken: list[int] = []
        for _ in range(12):  # more than two blocks each: refills race each other too
            for e in edges:
                taken += [e.take() for _ in range(10)]
            await asyncio.sleep(0.05)  # a block's refill is one round trip away
        assert len(set(taken)) == len(taken)
        assert min(taken) >= ID_BASE
    finally:
        await nc.close()


async def test_a_stream_made_with_other_partitions_is_refused(nats_server) -> None:  # type: ignore[no-untyped-def]
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await ensure_stream(js, Settings(nats_url=nats_server.url, partitions=8))
        await ensure_stream(js, Settings(nats_url=nats_server.url, partitions=8))  # idempotent
        with pytest.raises(RuntimeError, match="made with 8 partitions"):
            await ensure_stream(js, Settings(nats_url=nats_server.url, partitions=16))
    finally:
        await nc.close()


async def test_the_edge_answers_once_jetstream_has_the_hit(cluster_settings) -> None:  # type: ignore[no-untyped-def]
    recorder = open_recorder(cluster_settings)
    assert isinstance(recorder, JetStreamRecorder)
    await recorder.start()
    try:
        await asyncio.gather(*(recorder.record(_hit(lead)) for lead in range(1, 41)))
        assert recorder.committed == 40
    finally:
        await recorder.close()
    nc = await nats.connect(cluster_settings.nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(cluster_settings.nats_stream)
        assert info.state.messages == 40
        p = partition_of(3, 1, 8)
        msg = await js.get_last_msg(cluster_settings.nats_stream, subject(p))
        stored, _ = decode_hit(msg.data, msg.seq, False)
        assert msg.headers["Nats-Msg-Id"] == str(stored.id)  # JetStream de-duplicates on it
        assert partition_of(stored.company_id, stored.lead_id, 8) == p
    finally:
        await nc.close()


async def test_without_nats_a_hit_gets_no_promise_and_the_edge_recovers(  # type: ignore[no-untyped-def]
    cluster_settings, nats_server
) -> None:
    recorder = open_recorder(cluster_settings)
    await recorder.start()
    try:
        await recorder.record(_hit())
        nats_server.stop()
        t = time.monotonic()
        with pytest.raises(RecorderUnavailable):
            for _ in range(50):  # the client notices the lost connection within moments
                await recorder.record(_hit())
                await asyncio.sleep(0.1)
        assert time.monotonic() - t < 12
        nats_server.start()
        for _ in range(100):
            if recorder.available:
                break
            await asyncio.sleep(0.1)
        await recorder.record(_hit())  # back, with no restart of the edge
    finally:
        await recorder.close()


async def test_an_edge_started_before_nats_serves_503_then_records(  # type: ignore[no-untyped-def]
    cluster_settings, nats_server
) -> None:
    nats_server.stop()
    recorder = open_recorder(cluster_settings)
    await recorder.start()
    try:
        with pytest.raises(RecorderUnavailable):
            await recorder.record(_hit())
        nats_server.start()
        for _ in range(100):
            if recorder.available:
                break
            await asyncio.sleep(0.1)
        await recorder.record(_hit())
        assert recorder.committed == 1
    finally:
        await recorder.close()
