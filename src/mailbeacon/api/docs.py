"""`/api/docs`: Swagger UI from the package's own copy (swagger-ui-dist, vendored from
npm by tools/vendor.sh), so the API's documentation opens with no internet access and
under a CSP that names no other site and allows no inline script."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from mailbeacon import __version__

DOCS_PATH = "/api/docs"
SWAGGER = "/static/vendor/swagger"

router = APIRouter(include_in_schema=False)

PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>mailbeacon {__version__} · API docs</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="{SWAGGER}/swagger-ui.css">
  <link rel="stylesheet" href="/static/swagger-overrides.css">
</head>
<body>
<main id="swagger-ui" data-openapi="/api/openapi.json"></main>
<script src="{SWAGGER}/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js"></script>
</body>
</html>
"""


@router.get(DOCS_PATH, response_class=HTMLResponse)
async def api_docs() -> HTMLResponse:
    return HTMLResponse(PAGE)
