"""Merge fields: what a lead sees in place of `{{first_name}}`, and broken templates."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.compose.merge import fields_for, render
from mailbeacon.compose.model import Recipient

ANN = fields_for(Recipient(1, "ann@example.com", "Ann", None), unsubscribe_url="https://u/1")


@pytest.mark.parametrize(
    ("template", "html", "expected"),
    [
        ("Hi {{first_name}}", False, "Hi Ann"),
        ("Hi {{ first_name }} {{last_name}}!", False, "Hi Ann !"),  # missing -> empty
        ("{{email}}", False, "ann@example.com"),
        ("{{nickname}}|{{ company.name }}", False, "|"),  # undefined, even chained
        ("<a href='{{unsubscribe_url}}'>x</a>", True, "<a href='https://u/1'>x</a>"),
        ("{% if first_name %}Dear {{first_name}}{% endif %}", False, "Dear Ann"),
        ("p { color: red }", True, "p { color: red }"),  # CSS braces are not fields
    ],
)
def test_render(template: str, html: bool, expected: str) -> None:
    assert render(template, ANN, html=html) == expected


def test_html_escapes_values_text_does_not() -> None:
    fields = fields_for(Recipient(1, "x@example.com", "<b>Bo</b>"))
    assert render("{{first_name}}", fields, html=True) == "&lt;b&gt;Bo&lt;/b&gt;"
    assert render("{{first_name}}", fields, html=False) == "<b>Bo</b>"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Hi {{first_name", "line 1"),
        ("{% if x %}never closed", "line 1"),
        ("a\nb\n{{ 1 + }}", "line 3"),
        ("{{ first_name() }}", "merge field error: TypeError"),
        ("{{ 1 / 0 }}", "merge field error: ZeroDivisionError"),
    ],
)
def test_broken_templates_say_what_is_wrong(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render(template, ANN, html=True)


@pytest.mark.parametrize(
    "template",
    ["{{ ''.__class__.__mro__ }}", "{{ first_name.upper.__globals__ }}", "{{ cycler.__init__ }}"],
)
def test_the_sandbox_hides_python_internals(template: str) -> None:
    assert render(template, ANN, html=False) == ""


@given(st.text().filter(lambda s: "{" not in s))
def test_text_without_fields_is_unchanged(text: str) -> None:
    assert render(text, ANN, html=True) == text
