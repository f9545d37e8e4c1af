"""Automation: rules that act on opens, clicks, forwards, unsubscribes and silence.

`model` is the rule's shape, `triggers` the pure matching, `rules` their storage;
`consumer` and `deadlines` fire rules into durable jobs, `jobs`/`runner` run them once
(`actions`, `webhooks`), and `stage.run_forever` is the pipeline stage.
"""

from mailbeacon.automation.stage import run_forever

__all__ = ["run_forever"]
