"""Merge fields: render a subject or body for one lead with a sandboxed Jinja2.

Templates come from customers, so they run in Jinja's sandbox (no attribute tricks to
reach Python internals). A field nobody filled renders empty rather than failing a whole
campaign; a template that does not parse is refused with a message saying where.

Custom fields (`{{company}}`) come from the lead's `fields`; the built-in names win. A
default for a lead who has none: `{{ company | default("your team") }}` (an empty value
counts as none, so `{{ first_name | default("there") }}` greets a nameless lead too).
Which names a template uses is read from its syntax tree (`template_names`), so a
template naming a field no lead has can be refused before anything is sent.
Blocks shown by engagement (`{% if clicked("pricing") %}`) are `compose.blocks`; their
condition names are never merge fields, and every render can answer them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError, meta
from jinja2.filters import do_default
from jinja2.sandbox import SandboxedEnvironment

from mailbeacon.compose.blocks import CONDITIONS, Condition, condition_functions, parse_conditions
from mailbeacon.compose.model import Recipient


@cache
def _environment(autoescape: bool) -> SandboxedEnvironment:
    # ChainableUndefined: `{{ lead.company.name }}` on a missing field is empty too.
    env = SandboxedEnvironment(autoescape=autoescape, undefined=ChainableUndefined)
    env.filters["default"] = env.filters["d"] = _default
    return env


def _default(value: Any, default_value: Any = "", boolean: bool = True) -> Any:
    """Jinja's `default`, but an empty value is none too: a lead's blank first name
    should read "there", not "" (write `default(x, false)` for Jinja's own rule)."""
    return do_default(value, default_value, boolean)


# Names every message has; custom fields of these names are never seen.
BUILT_IN = frozenset({"first_name", "last_name", "email", "unsubscribe_url", "forward_url"})


def fields_for(recipient: Recipient, **extra: str) -> dict[str, str]:
    """The merge fields of a lead, plus per-message ones such as `unsubscribe_url`;
    custom fields first, so the built-in names win."""
    return {
        **(recipient.fields or {}),
        "first_name": recipient.first_name or "",
        "last_name": recipient.last_name or "",
        "email": recipient.email,
        **extra,
    }


def render(
    template: str,
    fields: Mapping[str, str],
    *,
    html: bool,
    meets: frozenset[Condition] = frozenset(),
) -> str:
    """Render `template` with `fields`; HTML output escapes the values (a lead named
    `<b>` stays text). `meets`: the engagement conditions the lead meets (a block of any
    other condition is left out). Raises ValueError naming the problem when the
    template is broken."""
    if "{" not in template:  # nothing to merge: skip the parser (campaigns are large)
        return template
    try:
        compiled = _environment(html).from_string(template)
    except TemplateSyntaxError as exc:
        raise ValueError(f"merge field error on line {exc.lineno}: {exc.message}") from exc
    try:
        return compiled.render(**fields, **condition_functions(meets))
    # Customer templates can fail in any way an expression can (`{{ 1/0 }}`,
    # `{{ first_name() }}`): each is the template's fault, reported the same way.
    except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as exc:
        raise ValueError(f"merge field error: {type(exc).__name__}: {exc}") from exc


def template_names(template: str) -> set[str]:
    """The top-level names a template reads (`{{ company }}`, `{% if vip %}`), less
    Jinja's own globals. Raises ValueError like `render` when it does not parse."""
    if "{" not in template:
        return set()
    env = _environment(False)
    try:
        tree = env.parse(template)
        # Compiling (inside find_undeclared_variables) is what finds an unknown filter,
        # `{{ first_name | there }}`: an assertion error, a syntax error's subclass.
        names = set(meta.find_undeclared_variables(tree))
    except TemplateSyntaxError as exc:
        raise ValueError(f"merge field error on line {exc.lineno}: {exc.message}") from exc
    return names - set(env.globals) - set(CONDITIONS)


def template_conditions(templates: Iterable[str | None]) -> set[Condition]:
    """The engagement conditions the templates use, for fetching them before a send.
    Raises ValueError (`blocks.BlockError` for a condition at fault) like `render`."""
    found: set[Condition] = set()
    for template in templates:
        found |= parse_conditions(template or "", _environment(False))
    return found


def unknown_fields(templates: Iterable[str | None], custom: Iterable[str]) -> list[str]:
    """The names the templates use that are neither built in nor a custom field in
    `custom`, sorted: an empty list means every name is known."""
    known = BUILT_IN | set(custom)
    used: set[str] = set()
    for template in templates:
        used |= template_names(template or "")
    return sorted(used - known)
