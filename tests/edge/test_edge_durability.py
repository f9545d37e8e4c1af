"""kill -9 the real server while pixels pour in: every hit that got a 200 is in `hits`.

The server is the real one (`mailbeacon serve --no-pipeline`: on SQLite its workers and
the hits writer process they share) in its own process group, on SQLite and PostgreSQL. Each request
carries its own user agent, so the check is per hit, not just a count. Then the same
with one process at a time: `serve` starts another in its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO

import httpx
import pytest

from mailbeacon.tokens import Kind

pytestmark = pytest.mark.slow
TOTAL, CONNECTIONS, KILL_AFTER = 2000, 32, 600


def start_server(
    db_url: str, port: int, workers: int, *, pipeline: bool = False, log: IO[bytes] | None = None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MAILBEACON_DATABASE_URL": db_url,
        "MAILBEACON_SECRET_KEYS": "t1:test-secret-one,t0:test-secret-old",
    }
    mailbeacon = str(Path(sys.executable).parent / "mailbeacon")
    cmd = [mailbeacon, "serve", "--port", str(port), "--workers", str(workers)]
    cmd.append("--pipeline" if pipeline else "--no-pipeline")
    return subprocess.Popen(cmd, env=env, start_new_session=True, stderr=log)


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


# -- supervision: kill -9 one process `serve` started, and it comes back ----------------
RECOVERY_S = 10.0  # the bound on getting pixels answered again (measured: see below)
RESPAWN_S = 30.0  # a new worker imports the whole app: slow on a busy test machine


def children(pid: int) -> dict[int, str]:
    """The processes `mb-*` whose parent is `pid`, by their name (`/proc/PID/comm`);
    not multiprocessing's resource tracker, say."""
    found: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # it ended while we looked
            continue
        name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :]
        if int(rest.split()[1]) == pid and name.startswith("mb-"):
            found[int(stat.parent.name)] = name
    return found


async def wait_for(what: str, check, timeout: float) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_serve_brings_back_each_process_it_started_and_keeps_every_answered_hit(
    seeded_sqlite, port: int, tmp_path: Path
) -> None:
    s = seeded_sqlite
    pixel = f"/o/{s.token(Kind.OPEN)}.gif"
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = start_server(s.url, port, 2, pipeline=True, log=log)
    answered: list[tuple[float, str]] = []  # when, and the hit's own user agent
    statuses: Counter[int | str] = Counter()
    recovered: dict[str, float] = {}
    victims: dict[str, int] = {}
    stopped_at = 0
    stop = asyncio.Event()
    try:
        await wait_ready(base, proc)
        expected = ["mb-hits-writer", "mb-pipeline", "mb-worker", "mb-worker"]
        await wait_for("every process named", lambda: sorted(children(proc.pid).values())
                       == expected, RESPAWN_S)  # fmt: skip
        originals = set(children(proc.pid))
        serial = iter(range(10**9))

        async def reader(http: httpx.AsyncClient) -> None:
            while not stop.is_set():
                ua = f"steady-{next(serial)}"
                try:
                    r = await http.get(pixel, headers={"user-agent": ua})
                except httpx.TransportError:  # its worker died under it: no promise made
                    statuses["no answer"] += 1
                    await asyncio.sleep(0.01)
                    continue
                statuses[r.status_code] += 1
                if r.status_code == 200:
                    answered.append((time.monotonic(), ua))
                else:
                    await asyncio.sleep(0.005)  # a 503 comes at once; do not spin on it

        async def kill_and_recover(name: str, label: str) -> None:
            before = children(proc.pid)
            # each worker: one that was there from the start, not the other's replacement
            victim = min((pid for pid, n in before.items() if n == name),
                         key=lambda pid: pid not in originals)  # fmt: skip
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            victims[label] = victim

            def replaced() -> bool:
                now = children(proc.pid)
                return victim not in now and sorted(now.values()) == expected

            def pixels_answered() -> bool:
                return bool(answered) and answered[-1][0] > killed_at + 0.05

            back = await wait_for(f"{label}: pixels answered 200 again", pixels_answered,
                                  RECOVERY_S)  # fmt: skip
            await wait_for(f"{label}: a new {name}", replaced, RESPAWN_S)
            recovered[label] = back
            await asyncio.sleep(0.5)  # steady load on the full set again before the next

        limits = httpx.Limits(max_connections=8)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as http:
            load = [asyncio.create_task(reader(http)) for _ in range(8)]
            await asyncio.sleep(1)
            await kill_and_recover("mb-hits-writer", "writer")
            await kill_and_recover("mb-pipeline", "pipeline")
            await kill_and_recover("mb-worker", "worker 1")
            await kill_and_recover("mb-worker", "worker 2")
            stop.set()
            await asyncio.gather(*load)
    finally:
        stop.set()
        if proc.poll() is None:
            stopped_at = log_path.stat().st_size
            proc.send_signal(signal.SIGTERM)  # a clean stop: nothing restarted during it
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        if proc.poll() is None:
            kill_group(proc, signal.SIGKILL)
    print(f"recovery (s): {recovered}; answers: {dict(statuses)}")

    log_text = log_path.read_text()
    said = {
        "writer": "hits writer (pid {}) died (killed by SIGKILL)",
        "pipeline": "pipeline (pid {}) died (killed by SIGKILL)",
        "worker 1": "HTTP worker (pid {}) died (exit code -9)",
        "worker 2": "HTTP worker (pid {}) died (exit code -9)",
    }
    assert len(victims) == 4 and len(set(victims.values())) == 4
    for label, pid in victims.items():
        assert said[label].format(pid) in log_text, log_text
    assert log_text.count(" is back (pid ") == 2, log_text
    # a clean stop: nothing was taken for a crash and started again while stopping
    assert " died " not in log_text[stopped_at:], log_text
    kept = {h["user_agent"] for h in await s.hits()}
    lost = {ua for _, ua in answered} - kept
    assert len(answered) > 500 and not lost, f"{len(lost)} of {len(answered)} lost"
