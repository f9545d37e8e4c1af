"""The scoring model's tables: each company's model, and what it has scored so far.

`leads.score` stays the one number the API shows and sorts by: rule points (`add_score`)
plus the model's points, faded by the company's half-life. The model's share is kept
apart (`lead_scores`) so fading it never touches the rules' points.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Float, Index, Integer, String, Table

from mailbeacon.store.schema import leads, metadata

# One row per company that changed its model; a company without one has the defaults
# (`crm.scoring.DEFAULT`: off until someone turns it on).
scoring_models = Table(
    "scoring_models",
    metadata,
    Column("company_id", Integer, primary_key=True),
    Column("enabled", Boolean, nullable=False, default=False),
    Column("open_points", Integer, nullable=False),
    Column("click_points", Integer, nullable=False),
    Column("forward_points", Integer, nullable=False),
    Column("unsubscribe_points", Integer, nullable=False),
    Column("half_life_days", Float, nullable=False),  # 0: engagement never fades
    Column("updated_at", DateTime, nullable=False),
)

# What the model scored, once per key: ``open:<message>`` (the first person's open of a
# message), ``click:<message>:<link>``, ``forward:<message>``, ``unsubscribe:<message>``.
# The key makes scoring idempotent however often the stage re-reads an event.
score_events = Table(
    "score_events",
    metadata,
    Column("lead_id", Integer, primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("company_id", Integer, nullable=False),
    Column("event_id", BigInteger, nullable=True),
    Column("points", Integer, nullable=False),
    Column("at", DateTime, nullable=False),
)

# The model's share of a lead's score: `points` as they stood at `at` (they halve every
# half-life after it), and `shown`, the whole number of them now inside `leads.score`.
lead_scores = Table(
    "lead_scores",
    metadata,
    Column("lead_id", Integer, primary_key=True),
    Column("company_id", Integer, nullable=False, index=True),
    Column("points", Float, nullable=False),
    Column("at", DateTime, nullable=False),
    Column("shown", Integer, nullable=False),
    Column("refreshed_at", DateTime, nullable=False, index=True),
)

# The lead index sorts by score within a company.
Index("ix_leads_company_score", leads.c.company_id, leads.c.score)
