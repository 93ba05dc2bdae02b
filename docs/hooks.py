"""MkDocs hooks (``hooks:`` in mkdocs.yml): the pages that are generated from the code at build
time, so they cannot go stale.

* ``<!-- generated: configuration -->`` (docs/reference/configuration.md): every
  :class:`handwriting_pipeline.config.Settings` subclass, found by importing every module of the
  package and walking the subclasses, with its block, YAML file and, per key, type, default and
  the field's comment (``#: ...`` above it or ``# ...`` after it).
* ``<!-- generated: floors -->`` (docs/architecture.md): the floors table, read with :mod:`ast`
  from ``FLOORS`` in ``tests/test_layers.py`` (the table the layering test checks), with the
  comment above each floor and the first line of each room's docstring.
* ``<!-- generated: api-index -->`` (docs/api/index.md) and one page ``api/<room>.md`` per room
  of ``FLOORS`` (``::: handwriting_pipeline.<room>``, rendered by mkdocstrings).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import io
import logging
import pkgutil
import sys
import tokenize
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "handwriting_pipeline"
LAYERS = ROOT / "tests" / "test_layers.py"
log = logging.getLogger("mkdocs.hooks.generate")

# modules that are entry points, not library code: importing them runs or configures something
SKIP_MODULES = {"handwriting_pipeline.__main__"}


# --------------------------------------------------------------------------- floors (architecture)
def floors() -> list[tuple[int, list[str], str]]:
    """(floor, rooms, comment) from the ``FLOORS`` dict literal of tests/test_layers.py."""
    source = LAYERS.read_text(encoding="utf-8")
    tree = ast.parse(source)
    node = next(n for n in ast.walk(tree)
                if isinstance(n, (ast.Assign, ast.AnnAssign))
                and any(isinstance(t, ast.Name) and t.id == "FLOORS"
                        for t in (n.targets if isinstance(n, ast.Assign) else [n.target])))
    table: dict[str, int] = ast.literal_eval(node.value)
    # the comment line above each floor's entries: "# 3: Donut (...)"
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and node.lineno <= tok.start[0] <= node.end_lineno:
            text = tok.string.lstrip("#").strip()
            head, _, rest = text.partition(":")
            if head.strip().isdigit():
                comments[int(head)] = rest.strip()
    by_floor: dict[int, list[str]] = {}
    for room, floor in table.items():
        by_floor.setdefault(floor, []).append(room)
    return [(f, by_floor[f], comments.get(f, "")) for f in sorted(by_floor, reverse=True)]


def room_path(room: str) -> Path | None:
    if (PACKAGE / room).is_dir():
        return PACKAGE / room / "__init__.py"
    if (PACKAGE / f"{room}.py").exists():
        return PACKAGE / f"{room}.py"
    return None


def room_summary(room: str) -> str:
    """First sentence of the room's opening docstring (no import)."""
    path = room_path(room)
    if path is None:
        return ""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    first = doc.strip().split("\n\n")[0].replace("\n", " ")
    return _rst_to_md(first).replace("|", "\\|")


def rooms() -> list[str]:
    """Every room of FLOORS that is part of the package (benchmarks excluded), bottom floor first."""
    return [r for _, names, _ in reversed(floors()) for r in names if room_path(r) is not None]


def floors_markdown() -> str:
    lines = ["| floor | rooms | what lives there |", "|--:|---|---|"]
    for floor, names, comment in floors():
        links = ", ".join(f"[`{n}`](api/{n}.md)" if room_path(n) else f"`{n}/`" for n in names)
        lines.append(f"| {floor} | {links} | {comment} |")
    lines += ["", "What each room says about itself (the first paragraph of its docstring):", ""]
    for floor, names, _ in floors():
        for n in names:
            if room_path(n):
                lines.append(f"- **`{n}`** (floor {floor}): {room_summary(n)}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- API pages
def api_page(room: str) -> str:
    return (f"# `{room}`\n\n"
            f"Generated from the docstrings of `src/handwriting_pipeline/{room}` "
            f"(floor {dict((r, f) for f, ns, _ in floors() for r in ns)[room]}).\n\n"
            f"::: handwriting_pipeline.{room}\n")


def api_index_markdown() -> str:
    lines = ["| room | floor | what it is |", "|---|--:|---|"]
    for floor, names, _ in floors():
        for n in names:
            if room_path(n):
                lines.append(f"| [`{n}`]({n}.md) | {floor} | {room_summary(n)} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- configuration reference
def settings_classes() -> list[type]:
    """Every subclass of handwriting_pipeline.config.Settings, after importing every module."""
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    import handwriting_pipeline
    from handwriting_pipeline.config import Settings

    failed = []
    for mod in pkgutil.walk_packages(handwriting_pipeline.__path__, "handwriting_pipeline."):
        if mod.name in SKIP_MODULES:
            continue
        try:
            importlib.import_module(mod.name)
        except Exception as exc:  # noqa: BLE001 - reported, and the build fails below
            failed.append(f"{mod.name}: {type(exc).__name__}: {exc}")
    if failed:
        raise RuntimeError("the configuration reference needs every module importable:\n" + "\n".join(failed))
    found, todo = [], list(Settings.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls not in found:
            found.append(cls)
            todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: (getattr(c, "source", "") or "~", block_of(c), c.__name__))


def block_of(cls: type) -> str:
    """The parameter block a settings class reads: its ``block``; for an engine's settings (which
    leave ``block`` empty) the block its docstring opens with (````extract.textract````), else
    ``extract.<name>`` of the engine class whose ``settings_class`` it is; else the class name."""
    import re

    if getattr(cls, "block", ""):
        return cls.block
    match = re.match(r"\s*``([\w.<>]+)``", cls.__doc__ or "")
    if match:
        return match.group(1)
    module = sys.modules.get(cls.__module__)
    for obj in vars(module).values() if module else ():
        if isinstance(obj, type) and getattr(obj, "settings_class", None) is cls \
                and isinstance(getattr(obj, "name", None), str):
            return f"extract.{obj.name}"
    return cls.__name__


def _field_comments(cls: type) -> dict[str, tuple[str, str]]:
    """field name -> (annotation as written, comment) from the class bodies of cls and its bases."""
    import inspect

    out: dict[str, tuple[str, str]] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass) or klass.__module__ == "builtins":
            continue
        try:
            lines, start = inspect.getsourcelines(klass)
        except (OSError, TypeError):
            continue
        source = inspect.cleandoc("\n" + "".join(lines)) if lines[0].startswith(" ") else "".join(lines)
        tree = ast.parse(source)
        body = next(n for n in tree.body if isinstance(n, ast.ClassDef))
        comments: dict[int, str] = {}
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string
        src_lines = source.splitlines()
        for node in body.body:
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            doc = []
            line = node.lineno - 1  # `#:` comments directly above
            while line >= 1 and src_lines[line - 1].strip().startswith("#:"):
                doc.insert(0, src_lines[line - 1].strip()[2:].strip())
                line -= 1
            trailing = comments.get(node.end_lineno)
            if trailing and not src_lines[node.end_lineno - 1].strip().startswith("#"):
                doc.append(trailing.lstrip("#").strip())
            out[node.target.id] = (ast.unparse(node.annotation), " ".join(doc))
    return out


def yaml_comments(source: str) -> dict[str, str]:
    """``block.key`` -> the comment on or above that key in a conf/base YAML file (line-based:
    comment lines right above a key at its indent, the comment after it, and comment lines
    indented under it that continue that comment)."""
    import re

    path = ROOT / source
    if not source or not path.is_file():
        return {}
    out: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    last: tuple[int, str] | None = None  # (indent, dotted key) of a key line just read with a comment after it
    for raw in path.read_text(encoding="utf-8").splitlines():
        indent = len(raw) - len(raw.lstrip())
        text = raw.strip()
        if not text:
            pending, last = [], None
            continue
        if text.startswith("#"):
            comment = text.lstrip("#").strip()
            if last and indent > last[0] and not pending:
                out[last[1]] += " " + comment  # continues the comment after the key
            else:
                pending.append(comment)
                last = None
            continue
        match = re.match(r"([\w-]+):(.*)$", text)
        if not match:
            pending, last = [], None
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = ".".join([k for _, k in stack] + [match.group(1)])
        stack.append((indent, match.group(1)))
        value = match.group(2)
        trailing = re.search(r"\s#\s?(.*)$", value) if "'" not in value and '"' not in value else None
        words = pending + ([trailing.group(1).strip()] if trailing else [])
        if words:
            out[key] = " ".join(words)
        pending, last = [], ((indent, key) if trailing else None)
    return out


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        try:
            value = f.default_factory()
        except Exception:  # noqa: BLE001
            return "(computed)"
    else:
        return "**required**"
    if dataclasses.is_dataclass(value):
        return f"`{type(value).__name__}()`"
    text = repr(value)
    return f"`{text if len(text) <= 60 else text[:57] + '...'}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def configuration_markdown() -> str:
    import inspect

    classes = settings_classes()
    out = [f"{len(classes)} settings blocks, generated from the code at build time.", ""]
    out += ["| block | YAML file | class |", "|---|---|---|"]
    for cls in classes:
        block = block_of(cls)
        out.append(f"| [`{block}`](#{_anchor(cls)}) | `{getattr(cls, 'source', '') or '–'}` | "
                   f"`{cls.__module__}.{cls.__qualname__}` |")
    out.append("")
    for cls in classes:
        block = block_of(cls)
        out.append(f"## `{block}` {{#{_anchor(cls)}}}")
        out.append("")
        source = getattr(cls, "source", "")
        out.append(f"`{cls.__module__}.{cls.__qualname__}`" + (f", in `{source}`" if source else ""))
        out.append("")
        doc = inspect.cleandoc(cls.__doc__ or "")
        if doc and not doc.startswith(cls.__name__ + "("):  # dataclasses invent a signature docstring
            out.append(_rst_to_md(doc))
            out.append("")
        hints = {}
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # noqa: BLE001 - fall back to the annotations as written
            pass
        comments = _field_comments(cls)
        from_yaml = yaml_comments(source)
        out += ["| key | type | default | description |", "|---|---|---|---|"]
        for f in dataclasses.fields(cls):
            written, comment = comments.get(f.name, ("", ""))
            kind = written or getattr(hints.get(f.name), "__name__", str(hints.get(f.name, "")))
            comment = comment or from_yaml.get(f"{block}.{f.name}", "")
            out.append(f"| `{f.name}` | `{_cell(kind)}` | {_cell(_default(f))} | {_cell(_rst_to_md(comment))} |")
        out.append("")
    return "\n".join(out) + "\n"


def _anchor(cls: type) -> str:
    return "settings-" + cls.__name__.lower()


def _rst_to_md(text: str) -> str:
    """Sphinx roles (``:class:`~a.b.C` `` -> `` `C` ``) and double backticks to markdown code."""
    import re

    text = re.sub(r":[a-z:]+:`(~?)([^`]+)`",
                  lambda m: "`" + (m.group(2).split(".")[-1] if m.group(1) else m.group(2)) + "`", text)
    return text.replace("``", "`")


# --------------------------------------------------------------------------- MkDocs events
GENERATORS = {
    "<!-- generated: configuration -->": configuration_markdown,
    "<!-- generated: floors -->": floors_markdown,
    "<!-- generated: api-index -->": api_index_markdown,
}


def on_files(files, config):  # noqa: ANN001 - MkDocs event
    """Add one API page per room (api/<room>.md) unless a hand-written one exists."""
    from mkdocs.structure.files import File

    for room in rooms():
        uri = f"api/{room}.md"
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, content=api_page(room)))
    return files


def on_nav(nav, config, files):  # noqa: ANN001 - MkDocs event
    """List the generated API pages under the 'API reference' section, bottom floor first."""
    from mkdocs.structure.nav import Section
    from mkdocs.structure.pages import Page

    for item in nav.items:
        if isinstance(item, Section) and item.title == "API reference":
            present = {getattr(child, "file", None) and child.file.src_uri for child in item.children}
            for room in rooms():
                uri = f"api/{room}.md"
                file = files.get_file_from_path(uri)
                if file is not None and uri not in present:
                    page = file.page if file.page is not None else Page(room, file, config)
                    page.title = room
                    page.parent = item
                    item.children.append(page)
            break
    return nav


def on_page_markdown(markdown, page, config, files):  # noqa: ANN001 - MkDocs event
    for marker, make in GENERATORS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown
