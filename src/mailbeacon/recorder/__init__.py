"""Durable, batched writes of raw hits: the edge awaits `record(hit)` and answers only
once the hit's batch is committed.

Group commit: hits that arrive while a batch is being written wait for the next one, so
one fsync covers many hits and durability costs almost nothing under load. `open_recorder`
picks the engine: a writer thread with stdlib sqlite3 (WAL, synchronous=FULL) or a raw
asyncpg connection (COPY) for PostgreSQL.
"""

from __future__ import annotations

from mailbeacon.recorder.batch import GroupCommit, Hit, Recorder, RecorderUnavailable, anonymize
from mailbeacon.settings import Settings


def open_recorder(settings: Settings) -> GroupCommit:
    """The recorder for `settings.database_url`; call `await start()` inside the loop."""
    linger = settings.commit_interval_ms / 1000
    if settings.is_sqlite:
        from mailbeacon.recorder.sqlite import SqliteRecorder

        return SqliteRecorder(
            settings.database_url,
            batch_size=settings.commit_batch_size,
            linger_s=linger,
            anonymize_ip=settings.anonymize_ip,
        )
    from mailbeacon.recorder.postgres import PostgresRecorder

    return PostgresRecorder(
        settings.database_url,
        batch_size=settings.commit_batch_size,
        linger_s=linger,
        anonymize_ip=settings.anonymize_ip,
    )


__all__ = ["GroupCommit", "Hit", "Recorder", "RecorderUnavailable", "anonymize", "open_recorder"]
