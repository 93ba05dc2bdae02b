"""Griffe extension (mkdocstrings, ``extensions:`` in mkdocs.yml): the package's docstrings use
Sphinx roles and literals (``:class:`~.model.FieldReader` ``, ````text````); render them as
markdown code (`` `FieldReader` ``, `` `text` ``) on the API pages."""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?[a-z]+:`(~?)([^`]+)`")


def markdown_code(text: str) -> str:
    text = ROLE.sub(lambda m: "`" + (m.group(2).split(".")[-1] if m.group(1) else m.group(2)) + "`", text)
    return text.replace("``", "`")


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_code(obj.docstring.value)
