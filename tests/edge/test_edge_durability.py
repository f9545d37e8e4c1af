"""kill -9 the real server while pixels pour in: every hit that got a 200 is in `hits`.

The server is the real one (`mailbeacon serve --no-pipeline`: on SQLite its workers and
the hits writer process they share) in its own process group, on SQLite and PostgreSQL. Each request
carries its own user agent, so the check is per hit, not just a count.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mailbeacon.tokens import Kind

pytestmark = pytest.mark.slow
TOTAL, CONNECTIONS, KILL_AFTER = 2000, 32, 600


def start_server(db_url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MAILBEACON_DATABASE_URL": db_url,
        "MAILBEACON_SECRET_KEYS": "t1:test-secret-one,t0:test-secret-old",
    }
    mailbeacon = str(Path(sys.executable).parent / "mailbeacon")
    cmd = [mailbeacon, "serve", "--no-pipeline", "--port", str(port), "--workers", str(workers)]
    return subprocess.Popen(cmd, env=env, start_new_session=True)


async def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=base) as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the server exited while starting"
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/o/warmup.gif")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise AssertionError("the server did not start")


def kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    proc.wait(timeout=30)


@pytest.mark.parametrize("workers", [1, 2])
async def test_kill_9_loses_no_answered_hit(seeded, db_url: str, port: int, workers: int) -> None:
    if workers == 2 and not db_url.startswith("sqlite"):
        pytest.skip("two workers matter for SQLite's shared file; one PostgreSQL run is enough")
    s = seeded
    pixel = f"/o/{s.token(Kind.OPEN)}.gif"
    base = f"http://127.0.0.1:{port}"
    proc = start_server(db_url, port, workers)
    answered: list[str] = []
    try:
        await wait_ready(base, proc)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(TOTAL):
            queue.put_nowait(n)
        killed = asyncio.Event()
        limits = httpx.Limits(max_connections=CONNECTIONS)

        async def reader(http: httpx.AsyncClient) -> None:
            while not queue.empty():
                n = queue.get_nowait()
                ua = f"reader-{n}"
                try:
                    r = await http.get(pixel, headers={"user-agent": ua})
                except httpx.TransportError:
                    continue  # the server died under this request: no answer, no promise
                if r.status_code == 200:
                    answered.append(ua)
                if len(answered) >= KILL_AFTER and not killed.is_set():
                    killed.set()
                    kill_group(proc, signal.SIGKILL)  # mid-stream: others are in flight

        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as http:
            await asyncio.gather(*(reader(http) for _ in range(CONNECTIONS)))
        assert killed.is_set() and KILL_AFTER <= len(answered) < TOTAL
    finally:
        if proc.poll() is None:
            kill_group(proc, signal.SIGKILL)

    # Restart on the same database: it opens cleanly and keeps recording.
    proc = start_server(db_url, port, 1)
    try:
        await wait_ready(base, proc)
        async with httpx.AsyncClient(base_url=base) as http:
            # a forged X-Forwarded-For from an untrusted (loopback) peer is not believed
            spoof = {"user-agent": "after-restart", "x-forwarded-for": "6.6.6.6"}
            after = await http.get(pixel, headers=spoof)
        assert after.status_code == 200
    finally:
        kill_group(proc, signal.SIGTERM)

    rows = await s.hits()
    kept = {h["user_agent"] for h in rows}
    assert {h["ip"] for h in rows if h["user_agent"] == "after-restart"} == {"127.0.0.1"}
    lost = set(answered) - kept
    assert not lost, f"{len(lost)} answered hits lost, e.g. {sorted(lost)[:5]}"
    assert "after-restart" in kept
