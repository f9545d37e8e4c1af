"""The pipeline's stages, each a `runner.Stage` built by the module that owns it."""

from __future__ import annotations

from mailbeacon.analytics import rollups
from mailbeacon.automation import event_stage
from mailbeacon.automation import stage as automation
from mailbeacon.crm import erase_sweep, import_jobs
from mailbeacon.delivery import sender
from mailbeacon.enrich import pipeline as enrich
from mailbeacon.pipeline.runner import Stage
from mailbeacon.settings import Settings
from mailbeacon.store import Database, retention


def stages(db: Database, settings: Settings) -> list[Stage]:
    """Every stage, in flow order: hits -> events -> rollups, rules and webhooks; then
    the campaign sends, retention, background imports and the erase sweep. Built afresh
    for each process: a stage's parts share state (a wake-up, open connections)."""
    every = [
        _enrich(settings),
        rollups.stage(settings),
        *automation.stages(db, settings),
        *event_stage.stages(settings),
        sender.stage(settings),
        retention.stage(settings),
        import_jobs.stage(settings),
        erase_sweep.stage(settings),
    ]
    # MAILBEACON_PIPELINE_STAGES: only these here (e.g. extra enrich-only workers).
    chosen = settings.only_stages
    return [s for s in every if not chosen or s.name.split(":")[0] in chosen]


def _enrich(settings: Settings) -> Stage:
    """Enrich from the database cursor, or, in the multi-machine mode, from this worker's
    share of the hits stream's partitions."""
    if settings.clustered:
        from mailbeacon.pipeline import cluster

        return cluster.stage(settings)
    return enrich.stage(settings)
