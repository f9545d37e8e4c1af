"""The data model in one place: every table of the spine and the tracking pipeline.

SQLAlchemy Core tables (no ORM): queries stay explicit and the hot paths stay cheap.
Timestamps are naive UTC everywhere (`store.now()`); the API renders them with a `Z`.
Every row that belongs to a customer carries `company_id`, so each query can be
scoped to one company without a join.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Stable constraint names so Alembic batch mode (SQLite) can find them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# 64-bit ids for the tables that grow with traffic; on SQLite an INTEGER PRIMARY KEY is
# the rowid, which is already 64-bit and is what makes inserts cheap.
BigId = BigInteger().with_variant(Integer(), "sqlite")

plans = Table(
    "plans",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("label", String(64), nullable=False),
    Column("email_tracking", Boolean, nullable=False, default=True),
    Column("automation", Boolean, nullable=False, default=True),
    Column("max_users", Integer, nullable=True),  # NULL: unlimited
    Column("max_leads", Integer, nullable=True),
)

companies = Table(
    "companies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("plan", String(32), ForeignKey("plans.name"), nullable=False),
    # Privacy, per company (store.retention, store.privacy): addresses cut to a /24
    # (/48) by the edge before a hit is written; raw hits deleted after
    # `hit_retention_days`; readers' addresses and user agents blanked everywhere after
    # `address_retention_days`. 0 days: kept (unless the server sets a shorter limit).
    Column("anonymize_ip", Boolean, nullable=False, default=False),
    Column("hit_retention_days", Integer, nullable=False, default=0),
    Column("address_retention_days", Integer, nullable=False, default=0, server_default="0"),
    Column("created_at", DateTime, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False, index=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=True),
    Column("role", String(32), nullable=False),
    Column("password_hash", String(200), nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime, nullable=False),
    # Every session cookie carries the epoch it was issued in; logging out, deactivating
    # or a password change bumps it, which ends every session of the user at once.
    Column("session_epoch", Integer, nullable=False, default=0, server_default="0"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    # The key is `mb_<prefix>_<secret>`; the prefix finds the row, the SHA-256 of the
    # whole key proves it. Keys are 32 random bytes, so a slow hash buys nothing.
    Column("prefix", String(16), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False),
    # What the user called it ("CRM sync"), so they know which one to revoke.
    Column("name", String(100), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("last_used_at", DateTime, nullable=True),
    Column("revoked_at", DateTime, nullable=True),
)

leads = Table(
    "leads",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("first_name", String(200), nullable=True),
    Column("last_name", String(200), nullable=True),
    Column("timezone", String(64), nullable=True),
    Column("owner_user_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("score", Integer, nullable=False, default=0),
    Column("status", String(16), nullable=False, default="subscribed"),
    Column("referred_by_lead_id", Integer, ForeignKey("leads.id"), nullable=True),
    Column("unsubscribed_at", DateTime, nullable=True),
    Column("created_at", DateTime, nullable=False),
    # Custom fields from imports and the API: {"company": "Acme", ...}, string values.
    Column("fields", JSON, nullable=True),
    # False: the lead asked not to be tracked (or gave no consent). Their mail carries no
    # pixel and no tracked links; unsubscribing still works.
    Column("tracking", Boolean, nullable=False, default=True, server_default="1"),
    UniqueConstraint("company_id", "email", name="uq_leads_company_email"),
)

lists = Table(
    "lists",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

list_members = Table(
    "list_members",
    metadata,
    Column("list_id", Integer, ForeignKey("lists.id"), primary_key=True),
    Column("lead_id", Integer, ForeignKey("leads.id"), primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("added_at", DateTime, nullable=False),
    Index("ix_list_members_lead", "lead_id"),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("subject", String(998), nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=True),
    Column("list_id", Integer, ForeignKey("lists.id"), nullable=True),
    Column("utm", JSON, nullable=True),  # {"source": ..., "campaign": ..., "content": ...}
    Column("tags", JSON, nullable=True),  # content tags, for engagement affinity
    Column("pixel_placement", String(16), nullable=False, default="body"),  # header|body|footer
    Column("pixel_format", String(8), nullable=False, default="gif"),  # gif|png
    # A visible "Forward to a friend" link (/f/{token}) in the footer.
    Column("forward_link", Boolean, nullable=False, default=False, server_default="0"),
    # Off: no pixel (opens) / links straight to their destination, no honeypot (clicks).
    Column("track_opens", Boolean, nullable=False, default=True, server_default="1"),
    Column("track_clicks", Boolean, nullable=False, default=True, server_default="1"),
    Column("status", String(16), nullable=False, default="draft"),  # draft|sending|sent
    # When to send: null (at once), {"at": ISO-8601} or {"best_hour": true, "within_hours": N}.
    Column("schedule", JSON, nullable=True),
    Column("sent_count", Integer, nullable=False, default=0),
    Column("skipped_count", Integer, nullable=False, default=0),
    Column("failed_count", Integer, nullable=False, default=0),
    Column("created_at", DateTime, nullable=False),
    Column("sent_at", DateTime, nullable=True),
)

messages = Table(
    "messages",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("lead_id", Integer, ForeignKey("leads.id"), nullable=False, index=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.id"), nullable=True, index=True),
    # A forward-to-a-friend copy points at the message it was forwarded from.
    Column("forwarded_from_message_id", BigId, nullable=True),
    Column("subject", String(998), nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=True),
    # What the sender wrote, before merge fields and tracking: a forward-to-a-friend
    # copy is composed afresh from it, with the friend's own tokens.
    Column("source_html", Text, nullable=True),
    Column("source_text", Text, nullable=True),
    Column("headers", JSON, nullable=True),
    Column("warnings", JSON, nullable=True),
    Column("forward_link", Boolean, nullable=False, default=False, server_default="0"),
    # What this mail was sent with, the lead's own setting included: the report's
    # `not_tracked` counts the messages with no pixel.
    Column("track_opens", Boolean, nullable=False, default=True, server_default="1"),
    Column("track_clicks", Boolean, nullable=False, default=True, server_default="1"),
    # stored|scheduled|queued|sent|failed|skipped: a campaign's copy is `scheduled` until
    # its time, `queued` while the SMTP hand-off is under way (claimed, outcome unknown).
    Column("status", String(16), nullable=False, default="stored"),
    Column("error", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    # A campaign's copy: when the sender hands it over (its lead's best hour, or at once).
    Column("scheduled_at", DateTime, nullable=True),
    Column("sent_at", DateTime, nullable=True),
    Index("ix_messages_company_created", "company_id", "created_at"),
    # A campaign's sent (or failed) messages in lead order: the who-engaged lists
    # "Not opened" and "Bounced" page through it by keyset.
    Index("ix_messages_campaign_status_lead", "campaign_id", "status", "lead_id"),
)

# The links of a sent message, by the index its tracked URL carries. A click can only
# ever redirect to a row of this table.
message_links = Table(
    "message_links",
    metadata,
    Column("message_id", BigId, ForeignKey("messages.id"), primary_key=True),
    Column("link_index", Integer, primary_key=True),
    Column("company_id", Integer, nullable=False),
    Column("url", Text, nullable=False),
    # link|unsubscribe|honeypot|forward
    Column("kind", String(16), nullable=False, default="link"),
)

# Raw HTTP requests to the tracking edge, exactly as they came. Never updated; the
# pipeline derives events from them and can re-derive them at any time.
# On PostgreSQL, `hits` and `events` are partitioned by month on `at` (migration 0015,
# store.partitions), so their keys there carry `at`: PRIMARY KEY (id, at) and
# uq_events_hit_type (hit_id, type, at). These tables are what SQLite gets.
hits = Table(
    "hits",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("at", DateTime, nullable=False),
    Column("kind", String(12), nullable=False),  # open|click|unsubscribe|forward
    Column("company_id", Integer, nullable=False),
    Column("message_id", BigInteger, nullable=False),
    Column("lead_id", Integer, nullable=False),
    Column("link_index", Integer, nullable=True),
    Column("ip", String(45), nullable=True),
    Column("user_agent", Text, nullable=True),
    Column("accept_language", String(200), nullable=True),
    Column("method", String(8), nullable=False, default="GET"),
    Index("ix_hits_message_kind", "message_id", "kind"),
)

# Classified engagement. One row per (hit, type): a click hit may also yield an
# inferred open. `hit_id` + `type` make re-running enrichment idempotent.
events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("hit_id", BigInteger, nullable=True),
    Column("type", String(12), nullable=False),  # open|click|unsubscribe|forward
    Column("at", DateTime, nullable=False),
    Column("company_id", Integer, nullable=False),
    Column("message_id", BigInteger, nullable=False),
    Column("lead_id", Integer, nullable=False),
    Column("campaign_id", Integer, nullable=True),
    Column("verdict", String(12), nullable=False),  # human|proxy|prefetch|scanner|bot
    Column("reason", Text, nullable=False, default=""),
    Column("inferred", Boolean, nullable=False, default=False),
    Column("forwarded", Boolean, nullable=False, default=False),
    Column("client", String(100), nullable=True),
    Column("device", String(100), nullable=True),  # desktop|mobile|tablet, or NULL: hidden
    Column("device_model", String(100), nullable=True),  # iPhone, iPad, Pixel 8, ...
    Column("os", String(100), nullable=True),
    Column("country", String(2), nullable=True),
    Column("region", String(100), nullable=True),
    Column("city", String(100), nullable=True),
    Column("url", Text, nullable=True),
    Column("link_index", Integer, nullable=True),
    Column("ip", String(45), nullable=True),
    UniqueConstraint("hit_id", "type", name="uq_events_hit_type"),
    Index("ix_events_message_at", "message_id", "at"),
    Index("ix_events_lead_at", "lead_id", "at"),
    Index("ix_events_campaign", "campaign_id"),
)

# Each pipeline stage (enrich, rollups, automation) keeps how far it has read here.
cursors = Table(
    "cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False, default=0),
    Column("updated_at", DateTime, nullable=True),
)

# Failed logins per account and per address, for throttling `POST /login`.
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(400), primary_key=True),  # "account:<email>" or "address:<ip>"
    Column("failures", Integer, nullable=False),
    Column("first_at", DateTime, nullable=False),
    Column("blocked_until", DateTime, nullable=True),
)

# A lease makes one process of several the runner of a stage (several `serve` workers).
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", DateTime, nullable=False),
)

# A CSV import that runs in the background (queued|running|done|failed): the file waits
# here until a stage takes it, and the page polls the progress, so it survives a reload.
lead_imports = Table(
    "lead_imports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, nullable=False, index=True),
    Column("user_id", Integer, nullable=True),
    Column("list_id", Integer, nullable=True),
    Column("filename", String(300), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("content", LargeBinary, nullable=True),  # dropped once the import is done
    Column("total_rows", Integer, nullable=False, default=0, server_default="0"),
    Column("processed_rows", Integer, nullable=False, default=0, server_default="0"),
    Column("imported", Integer, nullable=False, default=0, server_default="0"),
    Column("updated", Integer, nullable=False, default=0, server_default="0"),
    Column("rejected", JSON, nullable=True),  # [{"line", "reason"}]
    Column("error", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=True),
)

# Who erased or exported which lead, and when (GDPR articles 15 and 17). Append-only:
# no code path updates or deletes a row, and the database refuses to (triggers in
# migration 0009). The lead is named by id and by the SHA-256 of their normalised
# address, never the address itself: after an erase it must be gone, yet a company can
# still answer "did you erase x@y?" by hashing x@y.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("at", DateTime, nullable=False),
    Column("company_id", Integer, nullable=False),
    Column("user_id", Integer, nullable=True),
    Column("user_email", String(320), nullable=True),
    Column("action", String(16), nullable=False),  # erase|export
    Column("lead_id", Integer, nullable=False),
    Column("lead_email_sha256", String(64), nullable=False),
    Column("via", String(8), nullable=False),  # api|web|cli
    Index("ix_audit_log_company_id", "company_id", "id"),
)
