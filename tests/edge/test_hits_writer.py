"""The hits writer process `serve` runs on SQLite: workers' batches committed together,
garbage refused, and a clean answer when the writer is gone."""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import struct
import time
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest

from mailbeacon.cli.serving import start_hits_writer
from mailbeacon.recorder import Hit, RecorderUnavailable, open_recorder
from mailbeacon.recorder.writer import run_writer, sockaddr
from mailbeacon.settings import Settings
from mailbeacon.store.db import sqlite_path

pytestmark = pytest.mark.slow


def _hit(s, n: int, ip: str = "192.0.2.77") -> Hit:
    return Hit(
        time.time(), "open", s.company_id, s.message_id, s.lead_id, None,
        ip, f"reader {n}".encode(), b"en\x00", "GET",
    )  # fmt: skip


def _start(url: str, anonymize_ip: bool = False) -> tuple[BaseProcess, str]:
    """The writer as `serve` starts it (returns once it takes connections)."""
    return start_hits_writer(Settings(database_url=url, anonymize_ip=anonymize_ip))


@pytest.fixture
def writer(seeded_sqlite) -> Iterator[tuple[BaseProcess, str]]:
    process, address = _start(seeded_sqlite.url)
    yield process, address
    process.kill()
    process.join()


async def _clients(url: str, address: str, n: int) -> list:
    clients = [open_recorder(Settings(database_url=url, hits_writer=address)) for _ in range(n)]
    for client in clients:
        await client.start()
    return clients


async def test_two_workers_hits_are_all_committed(seeded_sqlite, writer) -> None:
    s, (_, address) = seeded_sqlite, writer
    one, two = await _clients(s.url, address, 2)
    await asyncio.gather(
        *(one.record(_hit(s, n)) for n in range(300)),
        *(two.record(_hit(s, n)) for n in range(300, 600)),
    )
    assert one.committed == two.committed == 300
    rows = await s.hits()  # read before close: a returned record() is already durable
    await one.close()
    await two.close()
    assert sorted(r["user_agent"] for r in rows) == sorted(f"reader {n}" for n in range(600))
    assert {r["accept_language"] for r in rows} == {"en"}
    assert {r["ip"] for r in rows} == {"192.0.2.77"} and all(r["at"].year >= 2024 for r in rows)


async def test_the_writer_anonymizes_when_asked(seeded_sqlite) -> None:
    s = seeded_sqlite
    process, address = _start(s.url, anonymize_ip=True)
    try:
        [client] = await _clients(s.url, address, 1)
        await client.record(_hit(s, 1, ip="203.0.113.77"))
        await client.close()
    finally:
        process.kill()
        process.join()
    assert [r["ip"] for r in await s.hits()] == ["203.0.113.0"]


async def test_garbage_from_one_peer_does_not_hurt_the_others(seeded_sqlite, writer) -> None:
    s, (process, address) = seeded_sqlite, writer
    [client] = await _clients(s.url, address, 1)
    for garbage in (
        struct.pack("<I", 3) + b"\xc1\xc1\xc1",  # not msgpack
        struct.pack("<I", 2) + b"\x91\x01",  # a list, but not rows of hits
        struct.pack("<I", 0xFFFFFFF0),  # a length nobody sends
    ):
        with socket.socket(socket.AF_UNIX) as rogue:
            rogue.connect(sockaddr(address))
            rogue.sendall(garbage)
            rogue.settimeout(5)
            assert rogue.recv(16) == b""  # dropped, no answer
    await client.record(_hit(s, 1))
    await client.close()
    assert process.is_alive() and len(await s.hits()) == 1


async def test_a_dead_writer_fails_fast_and_a_new_one_is_found(seeded_sqlite) -> None:
    s = seeded_sqlite
    process, address = _start(s.url)
    [client] = await _clients(s.url, address, 1)
    await client.record(_hit(s, 1))
    process.kill()
    process.join()
    with pytest.raises(RecorderUnavailable):
        for _ in range(100):  # the loss is noticed at the latest on the next send
            await client.record(_hit(s, 2))
            await asyncio.sleep(0.01)
    assert not client.available
    started = time.monotonic()
    with pytest.raises(RecorderUnavailable):
        await client.record(_hit(s, 3))
    assert time.monotonic() - started < 0.1
    # a writer on the same address again: the client reconnects by itself
    process = multiprocessing.get_context("spawn").Process(
        target=run_writer, args=(str(Path(sqlite_path(s.url))), address)
    )
    process.start()
    try:
        deadline = time.monotonic() + 30
        while not client.available:
            assert time.monotonic() < deadline, "the client did not reconnect"
            await asyncio.sleep(0.1)
        await client.record(_hit(s, 4))
        await client.close()
    finally:
        process.kill()
        process.join()
    assert {r["user_agent"] for r in await s.hits()} == {"reader 1", "reader 4"}
