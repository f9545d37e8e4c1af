"""axe-core in the page under test: `check_axe(page)` answers the serious and critical
accessibility violations, for every dashboard page's browser test to assert on.

axe-core is vendored for the tests only (tests/web/vendor, `make vendor`). The page's
CSP allows only /static/ scripts: an injected script tag would be refused (and logged as
a console error the tests count), so the library is evaluated through the DevTools
protocol, which the page's CSP does not govern. The page keeps its real CSP throughout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SERIOUS = ("serious", "critical")


def _load(page: Any) -> None:
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    assert page.evaluate("typeof window.axe.run === 'function'"), "axe-core did not load"


def check_axe(
    page: Any, impacts: tuple[str, ...] = SERIOUS, disable: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """The violations of the given impacts on the page as it is now: each with its rule
    id, impact, help text and the offending elements' selectors. `disable` names axe
    rules not to run (for third-party markup only, with the reason beside the call)."""
    _load(page)
    result = page.evaluate(
        """async (disable) => {
            const rules = Object.fromEntries(disable.map(id => [id, { enabled: false }]));
            const r = await axe.run(document, { resultTypes: ['violations'], rules });
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ')),
            }));
        }""",
        list(disable),
    )
    return [v for v in result if v["impact"] in impacts]
