"""The edge benchmark: wrk against `mailbeacon serve` and nginx's empty_gif, same run.

    make bench-edge                     # or: .venv/bin/python bench/edge.py --runs 3
    .venv/bin/python bench/edge.py --workers 2 --duration 10 --database postgresql://...

On SQLite `serve` runs its HTTP workers and one hits writer process they all send to
(`recorder.writer`); on PostgreSQL each worker writes itself.

Both servers get the same load on loopback (wrk: 2 threads, 64 connections, a valid
pixel token) one after the other. mailbeacon runs twice per round: `http-only`
(`mailbeacon serve --no-pipeline`: the HTTP workers alone) and `with-pipeline` (plain
`mailbeacon serve`: the pipeline process enriches the hits on the same 2 cores).
`--modes jetstream`
runs the multi-machine mode's edge (a NATS server of its own; PostgreSQL only for the
token's seed). `--modes no-hit` adds
a run with a forged token: the same server and HTTP path answering the image with
nothing to record, i.e. what this stack can do on this machine before any hit is
written. Printed: req/s of each and their ratio, p50/p99
latency, the machine, and whether every answered hit is in `hits` (rows recorded for
the benchmark's message >= wrk's 2xx answers: a 200 promises a committed hit). Other
processes on the machine (tests, other servers) skew the numbers: run it a few times.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, insert, select

from mailbeacon.store import Database, now
from mailbeacon.store.migrate import upgrade
from mailbeacon.store.schema import companies, hits, leads, messages, plans
from mailbeacon.tokens import Kind, Signer, Token

ROOT = Path(__file__).resolve().parent.parent
NGINX = Path(os.environ.get("MAILBEACON_NGINX_REFERENCE", "/work/shared/tools/nginx-reference"))
KEYS = "bench:bench-secret-key"


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    answered: int  # 2xx/3xx answers wrk counted


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> str:
    model = "unknown cpu"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


async def seed(url: str) -> tuple[int, str]:
    """A company, lead and message to aim at; returns (message id, pixel token)."""
    db = Database.unpooled(url)
    await upgrade(db)
    async with db.begin() as conn:
        if (
            await conn.execute(select(plans.c.name).where(plans.c.name == "trial"))
        ).first() is None:
            await conn.execute(insert(plans).values(name="trial", label="Trial"))
        company = await conn.execute(
            insert(companies).values(name="bench", plan="trial", created_at=now())
        )
        cid = company.inserted_primary_key[0]
        lead = await conn.execute(
            insert(leads).values(company_id=cid, email="reader@bench.test", created_at=now())
        )
        lid = lead.inserted_primary_key[0]
        message = await conn.execute(
            insert(messages).values(
                company_id=cid, lead_id=lid, subject="bench", html="<p>bench</p>", created_at=now()
            )
        )
        mid = message.inserted_primary_key[0]
    await db.dispose()
    signer = Signer([("bench", b"bench-secret-key")])
    return mid, signer.sign(Token(Kind.OPEN, cid, mid, lid))


def forged(token: str) -> str:
    """The token with one bit of its signature flipped, spelled canonically: verified in
    full (the HMAC is computed and compared) and refused."""
    kid, body = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[-1] ^= 1
    return f"{kid}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


async def count_hits(url: str, message_id: int) -> int:
    db = Database.unpooled(url)
    async with db.connect() as conn:
        query = select(func.count()).select_from(hits).where(hits.c.message_id == message_id)
        n = int((await conn.execute(query)).scalar_one())
    await db.dispose()
    return n


def wait_ready(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s")


@contextlib.contextmanager
def mailbeacon_serve(
    database: str, workers: int, port: int, pipeline: bool, nats: str | None = None
) -> Iterator[None]:
    env = {**os.environ, "MAILBEACON_DATABASE_URL": database, "MAILBEACON_SECRET_KEYS": KEYS}
    if nats:
        env["MAILBEACON_NATS_URL"] = nats
    mailbeacon = str(Path(sys.executable).parent / "mailbeacon")
    cmd = [mailbeacon, "serve", "--port", str(port), "--workers", str(workers)]
    cmd += [] if pipeline else ["--no-pipeline"]
    # its own session, so the workers it forks are stopped with it
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        wait_ready(port)
        time.sleep(1.0 if workers > 1 else 0.2)  # let every worker finish starting
        yield
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def nginx(port: int) -> Iterator[str]:
    out = subprocess.run([str(NGINX), "start", str(port)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"nginx-reference failed: {out.stderr.strip()}")
    try:
        wait_ready(port)
        yield out.stdout.strip()
    finally:
        subprocess.run([str(NGINX), "stop", str(port)], check=False)


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected latency from wrk: {text!r}")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, duration: int, connections: int = 64, threads: int = 2) -> Result:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Result(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        p99_ms=_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        answered=total - (int(bad.group(1)) if bad else 0),
    )


def measure(database: str, workers: int, duration: int, mode: str) -> tuple[Result, int]:
    """wrk against a fresh message; returns wrk's result and the hits kept for it."""
    message_id, token = asyncio.run(seed(database))
    if mode == "no-hit":  # a forged token: answered with the image, nothing recorded
        token = forged(token)
    port = free_port()
    if mode == "jetstream":  # the multi-machine mode's edge: answered once NATS has it
        return measure_jetstream(database, workers, duration, port, token)
    with mailbeacon_serve(database, workers, port, pipeline=mode == "with-pipeline"):
        ours = wrk(f"http://127.0.0.1:{port}/o/{token}.gif", duration)
    return ours, asyncio.run(count_hits(database, message_id))


def measure_jetstream(
    database: str, workers: int, duration: int, port: int, token: str
) -> tuple[Result, int]:
    """`serve --no-pipeline` with MAILBEACON_NATS_URL, against a NATS server of its own
    (testkit.cluster); kept = the messages in the hits stream."""
    sys.path.insert(0, str(ROOT))
    from testkit.cluster import NatsServer

    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(Path(tmp) / "nats")
        server.start()
        try:
            with mailbeacon_serve(database, workers, port, pipeline=False, nats=server.url):
                ours = wrk(f"http://127.0.0.1:{port}/o/{token}.gif", duration)
            return ours, asyncio.run(stream_messages(server.url))
        finally:
            server.stop()


async def stream_messages(url: str) -> int:
    import nats

    nc = await nats.connect(url)
    try:
        return int((await nc.jetstream().stream_info("MAILBEACON_HITS")).state.messages)
    finally:
        await nc.close()


def reference(duration: int) -> Result:
    with nginx(free_port()) as url:
        return wrk(url, duration)


def line(label: str, ours: Result, ref: Result, kept: int) -> str:
    if label.endswith("no-hit"):  # nothing to keep: say whether anything leaked in
        verdict = "none recorded, as it should" if kept == 0 else f"NO, {kept} recorded"
        return (
            f"  {label:24s} {ours.rps:9,.0f} req/s  p50 {ours.p50_ms:6.2f} ms  p99 "
            f"{ours.p99_ms:7.2f} ms  ratio {ours.rps / ref.rps:.2f}  (forged token: {verdict})"
        )
    verdict = "yes" if kept >= ours.answered else f"NO, {ours.answered - kept} lost"
    return (
        f"  {label:24s} {ours.rps:9,.0f} req/s  p50 {ours.p50_ms:6.2f} ms  p99 "
        f"{ours.p99_ms:7.2f} ms  ratio {ours.rps / ref.rps:.2f}  answered {ours.answered:,}, "
        f"in hits {kept:,}: every answered hit kept: {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="HTTP workers; default 1 on SQLite (one worker and the hits writer process "
        "measured best on 2 cores), 2 on PostgreSQL",
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", help="default: a fresh SQLite file in a temp dir")
    parser.add_argument(
        "--modes",
        default="http-only,with-pipeline",
        help="any of http-only, with-pipeline, no-hit (a forged token: the same HTTP "
        "path with nothing to record, the stack's ceiling on this machine) and jetstream "
        "(the multi-machine mode's edge, answering once NATS JetStream has the hit; "
        "needs --database postgresql://...)",
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    best: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        database = args.database or f"sqlite:///{tmp}/bench.db"
        engine = database.split(":")[0]
        if args.workers is None:
            args.workers = 1 if engine.startswith("sqlite") else 2
        print(f"machine: {machine()}")
        print(
            f"mailbeacon serve --workers {args.workers} on {engine} vs nginx empty_gif; "
            f"wrk -t2 -c64 -d{args.duration}s --latency each, loopback"
        )
        for n in range(1, args.runs + 1):
            ref = reference(args.duration)
            print(
                f"run {n}: nginx {ref.rps:,.0f} req/s  p50 {ref.p50_ms:.2f} ms  "
                f"p99 {ref.p99_ms:.2f} ms",
                flush=True,
            )
            for mode in modes:
                ours, kept = measure(database, args.workers, args.duration, mode)
                best[mode].append(ours.rps / ref.rps)
                print(line(f"mailbeacon {mode}", ours, ref, kept), flush=True)
        for mode, ratios in best.items():
            print(
                f"{mode}: ratio best {max(ratios):.2f}, worst {min(ratios):.2f} "
                f"over {len(ratios)} runs"
            )


if __name__ == "__main__":
    main()
