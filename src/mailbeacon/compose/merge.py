"""Merge fields: render a subject or body for one lead with a sandboxed Jinja2.

Templates come from customers, so they run in Jinja's sandbox (no attribute tricks to
reach Python internals). A field nobody filled renders empty rather than failing a whole
campaign; a template that does not parse is refused with a message saying where.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from mailbeacon.compose.model import Recipient


@cache
def _environment(autoescape: bool) -> SandboxedEnvironment:
    # ChainableUndefined: `{{ lead.company.name }}` on a missing field is empty too.
    return SandboxedEnvironment(autoescape=autoescape, undefined=ChainableUndefined)


def fields_for(recipient: Recipient, **extra: str) -> dict[str, str]:
    """The merge fields of a lead, plus per-message ones such as `unsubscribe_url`."""
    return {
        "first_name": recipient.first_name or "",
        "last_name": recipient.last_name or "",
        "email": recipient.email,
        **extra,
    }


def render(template: str, fields: Mapping[str, str], *, html: bool) -> str:
    """Render `template` with `fields`; HTML output escapes the values (a lead named
    `<b>` stays text). Raises ValueError naming the problem when the template is broken."""
    if "{" not in template:  # nothing to merge: skip the parser (campaigns are large)
        return template
    try:
        compiled = _environment(html).from_string(template)
    except TemplateSyntaxError as exc:
        raise ValueError(f"merge field error on line {exc.lineno}: {exc.message}") from exc
    try:
        return compiled.render(**fields)
    # Customer templates can fail in any way an expression can (`{{ 1/0 }}`,
    # `{{ first_name() }}`): each is the template's fault, reported the same way.
    except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
        raise ValueError(f"merge field error: {type(exc).__name__}: {exc}") from exc
