"""Enrichment: raw hits become events with client, device, OS, place, verdict and forward.

Pure classifiers, one module each (`useragent`, `networks`, `geo`, `verdict`,
`forwards`, `repeats`, put together in `classify`), and the I/O around them in
`pipeline` (the stage, its lease and `rebuild`) and `geo_fetch` (getting DB-IP);
the commands (`enrich`, `geo fetch`) are in `mailbeacon.cli.enrich`.
"""

from mailbeacon.enrich.pipeline import process_batch, rebuild, run_forever

__all__ = ["process_batch", "rebuild", "run_forever"]
