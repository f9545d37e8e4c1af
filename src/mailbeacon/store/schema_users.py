"""Invitations: how a user invited by email sets their first password.

The invited user's row exists from the start (it takes a seat of the plan, and their
address cannot be invited twice); it has no password until they follow the link. The
link carries a random token; only its SHA-256 is stored, so a copy of the database
lets no one in. One open invitation per user: inviting again replaces it.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Integer, String, Table

from mailbeacon.store.schema import metadata

invitations = Table(
    "invitations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, unique=True),
    Column("invited_by_user_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
)
