"""Rollup tables: the counts a campaign report reads, kept current as events arrive.

Events stay the source of truth; everything here is derived by `analytics.rollups` and
can be rebuilt from events at any time. Three shapes:

- `rollup_counts`: one counter per (campaign, dimension, key), e.g. ("n", "opens_total"),
  ("client", "Apple Mail"), ("how", "25") for Tuesday 01:00. A report is one index
  range scan over a campaign's rows, whatever the number of events behind them.
- `rollup_campaign_leads`: what each lead did with a campaign's mail. Unique counts
  (leads with a human open, leads with a human click) move only when a flag here flips.
- `rollup_forward_readers`: distinct readers detected as forwards, per message.
- `rollup_message_events`: each message's events grouped the way the who-engaged list
  folds them (type, verdict, inferred, forwarded, client, link), with their count, first
  and last time and one reason: a page of 50 leads reads a few rows per lead instead of
  every event they caused (issue 13: p95 < 100 ms at 10 million events).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Integer, String, Table, Text

from mailbeacon.store.schema import metadata

# Keys longer than this (URLs in the links table) are cut; the link index leads the key,
# so two long URLs never collide.
KEY_MAX = 512


def lead_key(lead_id: int) -> str:
    """A lead as a `rollup_counts` key (dim `forwarder`): zero-padded, so keys sort."""
    return f"{lead_id:010d}"


rollup_counts = Table(
    "rollup_counts",
    metadata,
    Column("campaign_id", Integer, primary_key=True),
    Column("dim", String(24), primary_key=True),
    Column("key", String(KEY_MAX), primary_key=True),
    Column("company_id", Integer, nullable=False),
    Column("n", BigInteger, nullable=False, default=0),
)

rollup_campaign_leads = Table(
    "rollup_campaign_leads",
    metadata,
    Column("campaign_id", Integer, primary_key=True),
    Column("lead_id", Integer, primary_key=True),
    Column("company_id", Integer, nullable=False),
    Column("any_open", Boolean, nullable=False, default=False),  # an open of any verdict
    Column("human_open", Boolean, nullable=False, default=False),  # human/proxy, not inferred
    Column("inferred_open", Boolean, nullable=False, default=False),
    Column("human_click", Boolean, nullable=False, default=False),
    Column("unsubscribed", Boolean, nullable=False, default=False),
    Column("last_at", DateTime, nullable=True),
)

rollup_forward_readers = Table(
    "rollup_forward_readers",
    metadata,
    Column("campaign_id", Integer, primary_key=True),
    Column("message_id", BigInteger, primary_key=True),
    Column("reader", String(128), primary_key=True),
    Column("company_id", Integer, nullable=False),
)

# The key's "none" values: a primary key column cannot be NULL on PostgreSQL.
NO_CLIENT = ""
NO_LINK = -1

rollup_message_events = Table(
    "rollup_message_events",
    metadata,
    Column("message_id", BigInteger, primary_key=True),
    Column("type", String(12), primary_key=True),
    Column("verdict", String(12), primary_key=True),
    Column("inferred", Boolean, primary_key=True),
    Column("forwarded", Boolean, primary_key=True),
    Column("client", String(100), primary_key=True),  # NO_CLIENT: none known
    # The link stands for its URL in the key (one URL per link of a message), so a long
    # URL never makes a long key.
    Column("link_index", Integer, primary_key=True),  # NO_LINK: not a click
    Column("campaign_id", Integer, nullable=False),
    Column("lead_id", Integer, nullable=False),
    Column("company_id", Integer, nullable=False),
    Column("url", Text, nullable=True),
    Column("n", BigInteger, nullable=False),
    Column("first_at", DateTime, nullable=False),
    Column("last_at", DateTime, nullable=False),
    Column("reason", Text, nullable=False),  # the smallest, as MIN(reason) over events
)
