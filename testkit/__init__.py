"""Fixtures for tests and benchmarks, kept out of the installed package.

`sample` builds a campaign with a known mix of traffic; `naive` recomputes its report
the slow way, as the reference the rollups are checked against. Not under src/, so
`pip install mailbeacon` never ships them: pytest finds this package through
`pythonpath = ["."]` (pyproject.toml), a bench script by putting the repo root on
`sys.path`.
"""
