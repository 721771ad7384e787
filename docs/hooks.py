"""MkDocs hook: the docstrings' Sphinx roles (:class:`X`, :mod:`.format`...) shown as code.

The package's docstrings name things with Sphinx roles; mkdocstrings renders the role's
backquoted target as code and leaves the ``:class:`` before it. This drops the role and, as
Sphinx does for ``~a.b.C``, shows only the last name; a paragraph ending in reST's ``::``
(a literal block follows) ends in one colon.
"""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:class|mod|func|meth|attr|exc|data|obj|py:\w+):<code>(~?)([^<]*)</code>")


def _code(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if tilde else target}</code>"


def on_page_content(html: str, **kwargs: Any) -> str:
    return ROLE.sub(_code, html).replace("::</p>", ":</p>")
