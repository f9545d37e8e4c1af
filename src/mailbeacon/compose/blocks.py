"""Content by engagement: template blocks shown only to leads who did something.

A block is an ordinary `{% if %}` of the merge-field sandbox around a *condition*, a
call naming what the lead did:

    {% if clicked("pricing") %}Our prices changed: ...{% endif %}
    {% if opened_tagged("webinar") %}See you at the next one.{% endif %}
    {% if score_at_least(50) %}Talk to sales?{% endif %}
    {% if not_opened_for_days(30) %}We miss you.{% endif %}

Conditions take one written-out value (a quoted text or a whole number), so which
facts a template needs is known from its syntax tree before anything is sent: a send
fetches each fact for a whole batch of leads at once (`compose.engagement`), and a
template naming a condition that does not exist is refused when it is saved, by name.
This module is pure: reading templates and answering conditions from known facts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

# A condition as a send evaluates it: ("clicked", "pricing"), ("score_at_least", 50).
Condition = tuple[str, str | int]


@dataclass(frozen=True, slots=True)
class Spec:
    takes: type  # str or int
    example: str
    minimum: int | None = None


CONDITIONS: Mapping[str, Spec] = {
    # a human click on a link whose address contains the text (any case)
    "clicked": Spec(str, 'clicked("pricing")'),
    # a human open of a campaign carrying the tag
    "opened_tagged": Spec(str, 'opened_tagged("webinar")'),
    # the lead's score is at least N
    "score_at_least": Spec(int, "score_at_least(50)"),
    # no human open in the last N days (a lead who never opened included)
    "not_opened_for_days": Spec(int, "not_opened_for_days(30)", minimum=1),
}
KNOWN = ", ".join(spec.example for spec in CONDITIONS.values())


class BlockError(ValueError):
    """A template's condition is unknown or badly written; `name` is the one at fault."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def _calls(tree: nodes.Template) -> Iterable[tuple[str, nodes.Call]]:
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name):
            yield call.node.name, call


def conditions_in(tree: nodes.Template, env: SandboxedEnvironment) -> set[Condition]:
    """The conditions a parsed template uses. Raises BlockError for a call of a name that
    is neither a condition nor a Jinja global (`clikced("x")`), for a condition used
    without its call (`{% if clicked %}` would be always true), and for a value that is
    not written out or of the wrong kind."""
    found: set[Condition] = set()
    callees: set[int] = set()
    for name, call in _calls(tree):
        callees.add(id(call.node))
        spec = CONDITIONS.get(name)
        if spec is None:
            if name in env.globals:
                continue
            raise BlockError(
                name, f'unknown condition "{name}" (line {call.lineno}); known: {KNOWN}'
            )
        found.add((name, _argument(name, spec, call)))
    for ref in tree.find_all(nodes.Name):
        if ref.name in CONDITIONS and id(ref) not in callees:
            spec = CONDITIONS[ref.name]
            raise BlockError(
                ref.name,
                f'"{ref.name}" is a condition (line {ref.lineno}): write it as {spec.example}',
            )
    return found


def _argument(name: str, spec: Spec, call: nodes.Call) -> str | int:
    args = call.args
    ok = (
        len(args) == 1
        and not (call.kwargs or call.dyn_args or call.dyn_kwargs)
        and isinstance(args[0], nodes.Const)
        and type(args[0].value) is spec.takes
    )
    value = args[0].value if ok else None  # type: ignore[attr-defined]
    if ok and spec.takes is str:
        value = value.strip().lower()
        ok = bool(value)
    if ok and spec.minimum is not None:
        ok = value >= spec.minimum
    if not ok:
        kind = "a quoted text" if spec.takes is str else "a whole number"
        if spec.minimum is not None:
            kind += f" of at least {spec.minimum}"
        raise BlockError(
            name, f"{name} takes {kind}, written out (line {call.lineno}): e.g. {spec.example}"
        )
    return value


def parse_conditions(template: str, env: SandboxedEnvironment) -> set[Condition]:
    """`conditions_in` for template text; a template that does not parse is a ValueError."""
    if "{" not in template:
        return set()
    try:
        tree = env.parse(template)
    except TemplateSyntaxError as exc:
        raise ValueError(f"merge field error on line {exc.lineno}: {exc.message}") from exc
    return conditions_in(tree, env)


def condition_functions(meets: frozenset[Condition]) -> dict[str, Callable[[object], bool]]:
    """The template's condition calls for one lead, answered from the conditions the lead
    meets (fetched before rendering). An argument the fetch did not know is not met."""

    def check(name: str) -> Callable[[object], bool]:
        def met(value: object) -> bool:
            key = value.strip().lower() if isinstance(value, str) else value
            return (name, key) in meets  # type: ignore[operator]

        return met

    return {name: check(name) for name in CONDITIONS}
