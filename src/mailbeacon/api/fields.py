"""Value types shared by request bodies and path parameters, so the OpenAPI document
states their bounds and the API refuses what no row could match (422/404, never 500)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, Field

# Ids are 64-bit signed integers in both engines (a bigger one reaching the database
# driver fails with "Python int too large", a 500), but the bound is the largest integer
# a JSON client holds exactly (JavaScript's MAX_SAFE_INTEGER): FastAPI writes schema
# bounds as floats, and 2**63 - 1 would be documented as 2**63, past the column.
MAX_ID = 2**53 - 1

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]


class TrackingIn(BaseModel):
    """What a campaign or message tracks; both on unless switched off. A lead whose
    `tracking` is false is tracked by neither, whatever this says."""

    opens: bool = Field(default=True, description="the pixel: opens are recorded")
    clicks: bool = Field(default=True, description="tracked links: clicks are recorded")
