"""Donut's token grammar: ``<s_hsf><s_DATE>8/28/89</s_DATE>...`` <-> the four fields."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from handwriting_pipeline.fields import KEYS, NONE, clean_fields

TASK_TOKEN = "<s_hsf>"


def field_tokens() -> list[str]:
    """Special tokens the Donut tokenizer needs: the task token and <s_KEY>/</s_KEY> pairs."""
    return [TASK_TOKEN] + [t for k in KEYS for t in (f"<s_{k}>", f"</s_{k}>")]


def json2token(fields: Mapping[str, Any]) -> str:
    """Four fields as a Donut target sequence, in KEYS order (without the task token).

    ``{"DATE": "8/28/89", ...}`` -> ``<s_DATE>8/28/89</s_DATE><s_CITY>...``
    """
    cleaned = clean_fields(fields)
    return "".join(f"<s_{k}>{cleaned[k]}</s_{k}>" for k in KEYS)


def token2json(sequence: str, processor: Any = None) -> dict[str, str]:
    """Donut output sequence -> the four fields; anything missing or malformed is "None".

    Uses ``DonutProcessor.token2json`` when a processor is given (the reference parser),
    otherwise a regex over the same ``<s_KEY>value</s_KEY>`` grammar.
    """
    sequence = sequence.replace(TASK_TOKEN, "")
    if processor is not None:
        try:
            parsed = processor.token2json(sequence)
        except Exception:  # noqa: BLE001 - malformed generations must not crash inference
            parsed = {}
        if isinstance(parsed, list):
            parsed = parsed[0] if parsed and isinstance(parsed[0], dict) else {}
        parsed = {k: (v if isinstance(v, str) else NONE) for k, v in parsed.items()}
        return clean_fields(parsed)
    found = {}
    for key in KEYS:
        m = re.search(rf"<s_{key}>(.*?)</s_{key}>", sequence, flags=re.S)
        if m:
            found[key] = m.group(1)
    return clean_fields(found)
