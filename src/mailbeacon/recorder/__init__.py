"""Durable, batched writes of raw hits: the edge awaits `record(hit)` and answers only
once the hit's batch is committed.

Group commit: hits that arrive while a batch is being written wait for the next one, so
one fsync covers many hits and durability costs almost nothing under load. `open_recorder`
picks the engine: a writer thread with stdlib sqlite3 (WAL, synchronous=FULL) that takes
each batch itself, or a raw asyncpg connection (COPY) for PostgreSQL on the event loop.
"""

from __future__ import annotations

from mailbeacon.recorder.batch import (
    GroupCommit,
    Hit,
    HitsWriter,
    Recorder,
    RecorderUnavailable,
)
from mailbeacon.settings import Settings
from mailbeacon.store.privacy import anonymize


def open_recorder(settings: Settings) -> HitsWriter:
    """The recorder for `settings.database_url`; call `await start()` inside the loop."""
    linger = settings.commit_interval_ms / 1000
    if settings.clustered:  # the multi-machine mode: JetStream, not the database
        from mailbeacon.recorder.jetstream import JetStreamRecorder

        return JetStreamRecorder(settings)
    if settings.is_sqlite and settings.hits_writer:
        from mailbeacon.recorder.writer import WriterClient

        return WriterClient(settings.hits_writer)  # the writer anonymizes
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


__all__ = [
    "GroupCommit",
    "Hit",
    "HitsWriter",
    "Recorder",
    "RecorderUnavailable",
    "anonymize",
    "open_recorder",
]
