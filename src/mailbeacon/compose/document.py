"""Parsing and writing back an email's HTML with lxml, whatever state it arrives in.

Customers paste HTML from every editor there is; lxml's HTML parser recovers from
unclosed tags and stray bytes, so instrumenting never fails on markup. CSS is inlined
first (css-inline) because many mail clients ignore `<style>` blocks.
"""

from __future__ import annotations

import re

import css_inline
import lxml.html
from lxml import etree

# At-rules (`@media` for phones, `@font-face`) cannot be inlined: keep them in <style>.
# Remote stylesheets are not fetched: composing must not depend on someone's server.
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
# default_doctype=False: do not invent an HTML 4 doctype the author never wrote.
# Characters XML (and so lxml's tree) cannot hold; they have no place in an email either.
_UNREPRESENTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_PARSER = lxml.html.HTMLParser(encoding="utf-8", default_doctype=False)


def inline_css(html: str) -> str:
    """`html` with its `<style>` rules moved into `style` attributes, or as it was when
    the CSS cannot be understood (the mail is still better sent than refused)."""
    if "<style" not in html.lower():
        return html
    try:
        return _INLINER.inline(html)
    except (ValueError, css_inline.InlineError):
        return html


def representable(text: str) -> str:
    """`text` without the characters an lxml tree refuses (a text node set from a form)."""
    return _UNREPRESENTABLE.sub("", text)


def parse(html: str) -> lxml.html.HtmlElement:
    """A whole document with a `<body>`, from any string (empty, fragment, broken)."""
    # Bytes with an explicit encoding: lxml refuses str input that carries an XML
    # encoding declaration. Control characters go: NUL would cut the document short.
    data = _UNREPRESENTABLE.sub("", html).encode("utf-8", "replace")
    try:
        root = lxml.html.document_fromstring(data, parser=_PARSER)
    except etree.ParserError:  # empty or whitespace only
        root = lxml.html.document_fromstring(b"<html><body></body></html>", parser=_PARSER)
    if root.find("body") is None:
        etree.SubElement(root, "body")
    return root


def body(root: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    found = root.find("body")
    assert found is not None, "parse() always gives a body"
    return found


def serialize(root: lxml.html.HtmlElement) -> str:
    doctype = root.getroottree().docinfo.doctype
    return lxml.html.tostring(root, encoding="unicode", method="html", doctype=doctype or None)
