"""Rules in the database: create, read, change, delete, and what they did (runs, deliveries).

Every change bumps the `automation.rules` counter (a row of `cursors`) in the same
transaction, so the pipeline in any process sees its cached rules are stale on its
next batch without polling the rules themselves.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.automation.model import SECRET_MASK, RuleIn, RulePatch, dump_actions
from mailbeacon.automation.sqlutil import bump_counter
from mailbeacon.crm.errors import Invalid, NotFound
from mailbeacon.crm.users import Principal
from mailbeacon.store import now
from mailbeacon.store.schema import campaigns, lists, users
from mailbeacon.store.schema_automation import (
    automation_jobs,
    automation_rules,
    automation_runs,
    webhook_deliveries,
)

RULES_VERSION = "automation.rules"
_PUBLIC = [
    c for c in automation_rules.c if c.name not in ("scan_sent_at", "scan_message_id", "company_id")
]


def public(row: Any, *, mask: bool = True) -> dict[str, Any]:
    """A rule as the API shows it; webhook secrets are masked."""
    rule = dict(row)
    if mask:
        rule["actions"] = [
            {**a, "secret": SECRET_MASK} if a.get("type") == "webhook" else a
            for a in rule["actions"]
        ]
    return rule


async def _check_refs(conn: AsyncConnection, company_id: int, rule: dict[str, Any]) -> None:
    """Campaigns, lists and users a rule names must be the company's own (422 otherwise)."""
    campaign = rule["trigger"].get("campaign_id")
    if campaign is not None:
        await _exists(conn, campaigns, campaign, company_id, "trigger.campaign_id")
    for i, action in enumerate(rule["actions"]):
        if "list_id" in action:
            await _exists(conn, lists, action["list_id"], company_id, f"actions.{i}.list_id")
        if action["type"] == "assign_owner":
            await _exists(conn, users, action["user_id"], company_id, f"actions.{i}.user_id")


async def _exists(conn: AsyncConnection, table: Any, id_: int, company_id: int, field: str) -> None:
    found = await conn.execute(
        select(table.c.id).where(table.c.id == id_, table.c.company_id == company_id)
    )
    if found.scalar() is None:
        raise Invalid(f"{field}: {table.name[:-1]} {id_} does not exist", field=field)


async def create_rule(conn: AsyncConnection, who: Principal, body: RuleIn) -> dict[str, Any]:
    rule = body.model_dump(exclude={"actions"}, exclude_none=True)
    rule["actions"] = dump_actions(body.actions)
    await _check_refs(conn, who.company_id, rule)
    at = now()
    within = rule["trigger"].get("within_seconds") or 0
    result = await conn.execute(
        insert(automation_rules)
        .values(
            **rule,
            company_id=who.company_id,
            created_by_user_id=who.user_id,
            created_at=at,
            updated_at=at,
            # not_opened: deadlines that fall after the rule exists are checked, so a
            # reminder rule made right after a send still covers that send.
            scan_sent_at=at - dt.timedelta(seconds=within) if within else None,
            scan_message_id=0 if within else None,
        )
        .returning(automation_rules.c.id)
    )
    await bump_counter(conn, RULES_VERSION)
    return await get_rule(conn, who.company_id, int(result.scalar_one()))


async def list_rules(conn: AsyncConnection, company_id: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(*_PUBLIC)
        .where(automation_rules.c.company_id == company_id)
        .order_by(automation_rules.c.id)
    )
    return [public(r) for r in rows.mappings()]


async def get_rule(
    conn: AsyncConnection, company_id: int, rule_id: int, *, mask: bool = True
) -> dict[str, Any]:
    row = (
        (
            await conn.execute(
                select(*_PUBLIC).where(
                    automation_rules.c.id == rule_id, automation_rules.c.company_id == company_id
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"rule {rule_id} does not exist")
    return public(row, mask=mask)


def _keep_secrets(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    """A webhook sent back with the masked secret keeps the secret it had (same URL)."""
    secrets = {a["url"]: a["secret"] for a in old if a.get("type") == "webhook"}
    for i, action in enumerate(new):
        if action.get("type") == "webhook" and action["secret"] == SECRET_MASK:
            if action["url"] not in secrets:
                raise Invalid("a new webhook needs its own secret", field=f"actions.{i}.secret")
            action["secret"] = secrets[action["url"]]


async def update_rule(
    conn: AsyncConnection, company_id: int, rule_id: int, patch: RulePatch
) -> dict[str, Any]:
    current = await get_rule(conn, company_id, rule_id, mask=False)
    changes = patch.model_dump(exclude_unset=True, exclude={"actions", "trigger"})
    if patch.trigger is not None:
        changes["trigger"] = patch.trigger.model_dump(exclude_none=True)
    if patch.actions is not None:
        changes["actions"] = dump_actions(patch.actions)
        _keep_secrets(current["actions"], changes["actions"])
    for name in ("name", "enabled", "repeat"):
        if name in changes and changes[name] is None:  # PATCH {"enabled": null}
            raise Invalid(f"{name} cannot be null", field=name)
    await _check_refs(conn, company_id, {**current, **changes})
    await conn.execute(
        update(automation_rules)
        .where(automation_rules.c.id == rule_id)
        .values(**changes, updated_at=now())
    )
    await bump_counter(conn, RULES_VERSION)
    return await get_rule(conn, company_id, rule_id)


async def delete_rule(conn: AsyncConnection, company_id: int, rule_id: int) -> None:
    """Delete the rule; its pending jobs are cancelled, its history kept for the log."""
    await get_rule(conn, company_id, rule_id)
    await conn.execute(delete(automation_rules).where(automation_rules.c.id == rule_id))
    await conn.execute(
        update(automation_jobs)
        .where(automation_jobs.c.rule_id == rule_id, automation_jobs.c.status == "pending")
        .values(status="cancelled", finished_at=now(), result="rule deleted")
    )
    await bump_counter(conn, RULES_VERSION)


async def list_runs(
    conn: AsyncConnection, company_id: int, rule_id: int, limit: int = 50
) -> list[dict[str, Any]]:
    """The rule's last runs, newest first, each with its jobs (one per action)."""
    await get_rule(conn, company_id, rule_id)
    runs = [
        dict(r)
        for r in (
            await conn.execute(
                select(automation_runs)
                .where(automation_runs.c.rule_id == rule_id)
                .order_by(automation_runs.c.id.desc())
                .limit(limit)
            )
        ).mappings()
    ]
    jobs = await conn.execute(
        select(
            automation_jobs.c.run_id,
            automation_jobs.c.id,
            automation_jobs.c.action_index,
            automation_jobs.c.kind,
            automation_jobs.c.status,
            automation_jobs.c.due_at,
            automation_jobs.c.attempts,
            automation_jobs.c.started_at,
            automation_jobs.c.finished_at,
            automation_jobs.c.result,
        )
        .where(automation_jobs.c.run_id.in_([r["id"] for r in runs]))
        .order_by(automation_jobs.c.action_index)
    )
    by_run: dict[int, list[dict[str, Any]]] = {}
    for job in jobs.mappings():
        by_run.setdefault(job["run_id"], []).append(dict(job))
    for run in runs:
        run["trigger"] = json.loads(run["trigger"])
        run["jobs"] = by_run.get(run["id"], [])
    return runs


async def list_deliveries(
    conn: AsyncConnection, company_id: int, rule_id: int, limit: int = 100
) -> list[dict[str, Any]]:
    """Webhook attempts of this rule, newest first."""
    await get_rule(conn, company_id, rule_id)
    rows = await conn.execute(
        select(webhook_deliveries)
        .where(webhook_deliveries.c.rule_id == rule_id)
        .order_by(webhook_deliveries.c.id.desc())
        .limit(limit)
    )
    return [dict(r) for r in rows.mappings()]


async def last_run_at(conn: AsyncConnection, company_id: int) -> dict[int, dt.datetime]:
    """When each of the company's rules last fired (for the dashboard list)."""
    rows = await conn.execute(
        select(automation_runs.c.rule_id, func.max(automation_runs.c.created_at))
        .where(automation_runs.c.company_id == company_id)
        .group_by(automation_runs.c.rule_id)
    )
    return {int(r[0]): r[1] for r in rows}
