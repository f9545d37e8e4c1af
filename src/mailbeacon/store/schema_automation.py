"""The automation tables: rules, the runs they fire, durable jobs and webhook deliveries.

A *run* is one firing of a rule for one lead; its unique `(rule_id, lead_id, key)` is
what makes a rule fire once per lead (key ``once``) or once per trigger (key
``event:<id>`` / ``message:<id>`` when the rule repeats). A *job* is one action of a run,
due at a time; `(run_id, action_index)` is its idempotency key, so however often the
pipeline re-reads an event, an action is written, and therefore run, once.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from mailbeacon.store.schema import BigId, messages, metadata

# not_opened deadlines are found by scanning a company's messages in sent order.
Index("ix_messages_company_sent", messages.c.company_id, messages.c.sent_at)

automation_rules = Table(
    "automation_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("repeat", Boolean, nullable=False, default=False),
    Column("trigger", JSON, nullable=False),
    Column("actions", JSON, nullable=False),
    Column("created_by_user_id", Integer, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    # not_opened: the deadlines scanned so far, as (sent_at, message id) of the last
    # message checked; a rule starts at its creation minus its window.
    Column("scan_sent_at", DateTime, nullable=True),
    Column("scan_message_id", BigId, nullable=True),
)

automation_runs = Table(
    "automation_runs",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("rule_id", Integer, nullable=False),
    Column("company_id", Integer, nullable=False),
    Column("lead_id", Integer, nullable=False),
    Column("key", String(64), nullable=False),
    Column("event_id", BigId, nullable=True),
    # The event (or deadline) that fired it, as JSON text: serialised once per event
    # and shared by the rules it fires, where a JSON column would encode every row.
    Column("trigger", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("rule_id", "lead_id", "key", name="uq_automation_runs_rule_lead_key"),
    Index("ix_automation_runs_rule_id", "rule_id", "id"),
)

automation_jobs = Table(
    "automation_jobs",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("run_id", BigId, nullable=False),
    Column("action_index", Integer, nullable=False),
    Column("rule_id", Integer, nullable=False),
    Column("company_id", Integer, nullable=False),
    Column("lead_id", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    # The action as it was when the rule fired, as JSON text (serialised once per rule).
    Column("action", Text, nullable=False),
    # pending -> running -> done | failed | skipped | cancelled
    Column("status", String(12), nullable=False, default="pending"),
    Column("due_at", DateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("locked_by", String(128), nullable=True),
    Column("locked_until", DateTime, nullable=True),
    Column("started_at", DateTime, nullable=True),
    Column("finished_at", DateTime, nullable=True),
    Column("result", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("run_id", "action_index", name="uq_automation_jobs_run_action"),
    Index("ix_automation_jobs_due", "status", "due_at"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("job_id", BigId, nullable=False),
    Column("rule_id", Integer, nullable=False),
    Column("company_id", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("url", Text, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("ok", Boolean, nullable=False),
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Column("final", Boolean, nullable=False, default=False),  # no retry follows
    Column("at", DateTime, nullable=False),
    Index("ix_webhook_deliveries_rule", "rule_id", "id"),
)
