"""Donut's token grammar: ``<s_hsf><s_DATE>8/28/89</s_DATE>...`` <-> a form's fields.

The tokens come from the form spec: a task token (``<s_hsf>`` for the HSF top section's layout,
as every model saved so far has it; ``<s_<form name>>`` for another form) and one
``<s_KEY>``/``</s_KEY>`` pair per field, in the spec's order. ``form=None`` is the HSF form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from handwriting_pipeline.fields import NONE, clean_fields
from handwriting_pipeline.fields.formspec import FormSpec, hsf_form, is_hsf_layout

#: the HSF form's task token (the decoder's start token of every HSF model)
TASK_TOKEN = "<s_hsf>"


def _spec(form: FormSpec | None) -> FormSpec:
    return hsf_form() if form is None else form


def task_token(form: FormSpec | None = None) -> str:
    """The decoder's start token: ``<s_hsf>`` for the HSF layout, ``<s_<form name>>`` otherwise."""
    return TASK_TOKEN if is_hsf_layout(form) else f"<s_{form.name}>"


def field_tokens(form: FormSpec | None = None) -> list[str]:
    """Special tokens the Donut tokenizer needs: the task token and <s_KEY>/</s_KEY> pairs."""
    return [task_token(form)] + [t for k in _spec(form).keys for t in (f"<s_{k}>", f"</s_{k}>")]


def grammar_problem(form: FormSpec) -> str | None:
    """Why ``form``'s fields cannot be written in this grammar (None: they can): every token
    must be distinct (a field named like the form would open with the task token)."""
    tokens = field_tokens(form)
    if len(set(tokens)) < len(tokens):
        return f"form '{form.name}' has a field token equal to its task token {task_token(form)}"
    return None


def json2token(fields: Mapping[str, Any], form: FormSpec | None = None) -> str:
    """A form's fields as a Donut target sequence, in the spec's order (without the task token).

    ``{"DATE": "8/28/89", ...}`` -> ``<s_DATE>8/28/89</s_DATE><s_CITY>...``
    """
    keys = _spec(form).keys
    cleaned = clean_fields(fields, keys)
    return "".join(f"<s_{k}>{cleaned[k]}</s_{k}>" for k in keys)


def token2json(sequence: str, processor: Any = None, form: FormSpec | None = None) -> dict[str, str]:
    """Donut output sequence -> the form's fields; anything missing or malformed is "None".

    Uses ``DonutProcessor.token2json`` when a processor is given (the reference parser),
    otherwise a regex over the same ``<s_KEY>value</s_KEY>`` grammar.
    """
    keys = _spec(form).keys
    sequence = sequence.replace(task_token(form), "")
    if processor is not None:
        try:
            parsed = processor.token2json(sequence)
        except Exception:  # noqa: BLE001 - malformed generations must not crash inference
            parsed = {}
        if isinstance(parsed, list):
            parsed = parsed[0] if parsed and isinstance(parsed[0], dict) else {}
        parsed = {k: (v if isinstance(v, str) else NONE) for k, v in parsed.items()}
        return clean_fields(parsed, keys)
    found = {}
    for key in keys:
        m = re.search(rf"<s_{key}>(.*?)</s_{key}>", sequence, flags=re.S)
        if m:
            found[key] = m.group(1)
    return clean_fields(found, keys)
