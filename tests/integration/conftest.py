"""Fixtures of the end-to-end stories (defined in live_server.py, a unique module name:
test folders here have no __init__.py, so every `conftest` is the same module name)."""

from live_server import live, mailbox

__all__ = ["live", "mailbox"]
