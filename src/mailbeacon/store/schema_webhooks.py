"""Event webhooks: a company's subscriptions, and the outbox of deliveries they make.

A *subscription* (`event_webhooks`) names a URL, its signing secret, the event types it
wants and the verdicts it accepts. Each event that matches becomes one row of
`event_webhook_deliveries`, the durable outbox: `(webhook_id, source)` is unique
(``event:<id>``, or ``bounce:<message id>``), so however often the fan-out re-reads an
event, it is queued once. The row's id is the delivery id receivers deduplicate on, and
its status and attempt columns are the delivery log.
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

from mailbeacon.store.schema import BigId, metadata

event_webhooks = Table(
    "event_webhooks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("secret", String(200), nullable=False),
    Column("events", JSON, nullable=False),  # ["open", "click", ...]
    Column("verdicts", JSON, nullable=False),  # ["human", "proxy", ...]
    Column("paused", Boolean, nullable=False, default=False),
    # The newest event when it was made: it hears of later events only, however far
    # behind the fan-out's cursor is.
    Column("after_event_id", BigId, nullable=False, default=0),
    Column("created_by_user_id", Integer, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

event_webhook_deliveries = Table(
    "event_webhook_deliveries",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("webhook_id", Integer, nullable=False),
    Column("company_id", Integer, nullable=False),
    Column("lead_id", Integer, nullable=False),
    Column("event_id", BigId, nullable=True),  # None for a bounce (not an `events` row)
    Column("event_type", String(12), nullable=False),
    Column("source", String(40), nullable=False),
    # The event as the API shows it, serialised once when it was queued.
    Column("payload", Text, nullable=False),
    # pending -> delivered | failed | cancelled (the subscription was deleted)
    Column("status", String(12), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("last_status", Integer, nullable=True),  # the receiver's last HTTP status
    Column("last_error", Text, nullable=True),
    Column("delivered_at", DateTime, nullable=True),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("webhook_id", "source", name="uq_event_webhook_deliveries_source"),
    # The sender's queue heads: a lead's oldest pending delivery per subscription.
    Index("ix_event_webhook_deliveries_queue", "webhook_id", "lead_id", "status", "id"),
    Index("ix_event_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_event_webhook_deliveries_lead", "lead_id"),
)
