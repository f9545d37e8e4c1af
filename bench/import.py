"""CSV lead import: 100,000 rows through `crm.imports`, beside the naive row-by-row insert.

    .venv/bin/python bench/import.py [--rows 100000] [--naive-rows 5000]
                                     [--engines sqlite,postgresql] [--no-api]

A CSV of `--rows` leads is generated (semicolon-separated, a BOM, quoted names, two
custom fields, one bad address per 1,000 rows). On each engine, in a fresh database:
- `import_leads` of the whole file into an empty company, adding every lead to a list
  (all new leads), then the same file again (all updates);
- the same file through the real API (`POST /api/v1/leads/import`, the ASGI app over
  httpx, multipart), into another company;
- the naive reference: csv.DictReader, then per row the address check, a SELECT by
  email and an INSERT or UPDATE and the list membership, one statement at a time (one
  transaction, which is kinder to it than a commit per row), over the first
  `--naive-rows` rows; its 100,000-row time is extrapolated from its rows/s.
PostgreSQL: MAILBEACON_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/test); a
throwaway database mb_bench_import_* is created on that server and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from report import PG, load_average, machine
from sqlalchemy import insert, select, update

from mailbeacon.app import create_app
from mailbeacon.crm.companies import create_company
from mailbeacon.crm.errors import CrmError
from mailbeacon.crm.imports import import_leads
from mailbeacon.crm.leads import check_timezone
from mailbeacon.crm.lists import create_list
from mailbeacon.crm.users import (
    Principal,
    create_api_key,
    create_user,
    get_principal,
    normalize_email,
)
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.migrate import upgrade
from mailbeacon.store.schema import leads, list_members

ZONES = ("Europe/Paris", "America/New_York", "", "Asia/Tokyo", "UTC")


def make_csv(rows: int) -> bytes:
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["email", "first_name", "last_name", "timezone", "Company", "Plan"])
    for i in range(rows):
        email = f"lead{i}@example{i % 997}.com" if i % 1000 != 999 else f"broken{i}"
        writer.writerow(
            [email, f"First{i}", f"Last; {i}", ZONES[i % 5], f"Company {i % 5000}", "gold"]
        )
    return out.getvalue().encode()


async def _company(db: Database, name: str) -> tuple[Principal, int, str]:
    async with db.begin() as conn:
        company = await create_company(conn, name, "ultimate")
        user = await create_user(
            conn, company_id=company, email=f"admin@{uuid.uuid4().hex[:8]}.example.com",
            role="administrator",
        )  # fmt: skip
        who = await get_principal(conn, user)
        assert who is not None
        made = await create_list(conn, who, "Imported")
        key = await create_api_key(conn, user)
    return who, int(made["id"]), key


async def naive(db: Database, who: Principal, list_id: int, data: bytes, limit: int) -> int:
    """Row by row: the import as one would first write it. Returns rows written."""
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";")
    done = 0
    async with db.begin() as conn:
        for n, row in enumerate(reader):
            if n >= limit:
                break
            try:
                email = normalize_email(row["email"])
                tz = check_timezone(row["timezone"])
            except CrmError:
                continue
            fields = {"company": row["Company"], "plan": row["Plan"]}
            found = await conn.scalar(
                select(leads.c.id).where(
                    leads.c.company_id == who.company_id, leads.c.email == email
                )
            )
            values = {"first_name": row["first_name"], "last_name": row["last_name"],
                      "timezone": tz, "fields": fields}  # fmt: skip
            if found is None:
                found = (
                    await conn.execute(
                        insert(leads)
                        .values(
                            company_id=who.company_id,
                            email=email,
                            owner_user_id=who.user_id,
                            score=0,
                            status="subscribed",
                            created_at=now(),
                            **values,
                        )
                        .returning(leads.c.id)
                    )
                ).scalar_one()
            else:
                await conn.execute(update(leads).where(leads.c.id == found).values(**values))
            await conn.execute(
                insert(list_members).values(
                    list_id=list_id, lead_id=found, company_id=who.company_id, added_at=now()
                )
            )
            done += 1
    return done


def line(name: str, what: str, rows: int, seconds: float, extra: str = "") -> None:
    print(
        f"{name:<10} {what:<44} {rows:>7,} rows {seconds:7.2f} s {rows / seconds:>9,.0f} rows/s"
        f"  {extra}  load average {load_average()}",
        flush=True,
    )


async def bench(url: str, name: str, data: bytes, rows: int, naive_rows: int, api: bool) -> None:
    db = Database(url)
    try:
        await upgrade(db)
        who, list_id, _ = await _company(db, "Bulk")
        t = time.perf_counter()
        first = await import_leads(db, who, data, list_id=list_id)
        bulk = time.perf_counter() - t
        line(name, "crm.imports, new leads (+ list)", rows, bulk,
             f"imported {first.imported:,} rejected {len(first.rejected):,}")  # fmt: skip
        t = time.perf_counter()
        again = await import_leads(db, who, data, list_id=list_id)
        line(name, "crm.imports, same file again (updates)", rows, time.perf_counter() - t,
             f"updated {again.updated:,}")  # fmt: skip
        if api:
            _, api_list, key = await _company(db, "Api")
            settings = Settings(
                database_url=url,
                var_dir=Path(tempfile.mkdtemp()),
                secret_keys=(("bench", b"bench-only-signing-key"),),  # signs nothing here
            )
            app = create_app(settings, run_stages=False)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                t = time.perf_counter()
                r = await client.post(
                    "/api/v1/leads/import",
                    files={"file": ("leads.csv", data, "text/csv")},
                    data={"list_id": str(api_list)},
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=600,
                )
                took = time.perf_counter() - t
            answer = r.json()
            line(name, "POST /api/v1/leads/import (ASGI, multipart)", rows, took,
                 f"HTTP {r.status_code} imported {answer.get('imported', 0):,}")  # fmt: skip
        slow_who, slow_list, _ = await _company(db, "Naive")
        t = time.perf_counter()
        done = await naive(db, slow_who, slow_list, data, naive_rows)
        slow = time.perf_counter() - t
        per_row = slow / max(done, 1)
        line(name, f"naive row-by-row, first {naive_rows:,} rows", done, slow,
             f"-> {rows:,} rows ~{per_row * rows:,.1f} s; bulk is {per_row * rows / bulk:,.1f}x"
             " faster")  # fmt: skip
    finally:
        await db.dispose()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--naive-rows", type=int, default=5_000)
    ap.add_argument("--engines", default="sqlite,postgresql")
    ap.add_argument("--no-api", action="store_true")
    args = ap.parse_args()
    data = make_csv(args.rows)
    print(
        f"machine: {machine()}; load average at start {load_average()}; "
        f"CSV {len(data) / 1e6:.1f} MB, {args.rows:,} rows",
        flush=True,
    )
    run = (data, args.rows, args.naive_rows, not args.no_api)
    engines = args.engines.split(",")
    if "sqlite" in engines:
        with tempfile.TemporaryDirectory() as tmp:
            await bench(f"sqlite:///{Path(tmp) / 'bench.db'}", "sqlite", *run)
    if "postgresql" in engines:
        dbname = f"mb_bench_import_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(PG)
        await admin.execute(f'CREATE DATABASE "{dbname}"')
        try:
            await bench(f"{PG.rsplit('/', 1)[0]}/{dbname}", "postgresql", *run)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
