"""The field reader's own format: which text each line is trained to read, and back to fields.

The DATE line reads the DATE as written. The CITY/STATE/ZIP line reads the three fields joined
by a separator symbol ``|`` (``DouglasVILLE|GA.|30134``; an empty field stays empty:
``Baltimore||21201``), so the model itself learns where the writer's fields end, from gaps,
commas and position — no rules needed to split ``357125`` into STATE and ZIP afterwards. When a
reading does not have exactly two separators, :func:`split_free_text` falls back to rules.
"""

from __future__ import annotations

import re

from handwriting_pipeline.fields import KEYS, NONE
from handwriting_pipeline.fields.formspec import hsf_form

SEP = "|"
# what the recognizer may output (index 0 of the model's output is the CTC blank)
ALPHABET = " ',-./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" + SEP
#: the fields of the shared line, from the HSF form's spec: ("CITY", "STATE", "ZIP")
CSZ_KEYS: tuple[str, ...] = hsf_form().line("CSZ").fields


def _value(text: str) -> str:
    return "" if text == NONE else text


def line_targets(fields: dict[str, str]) -> dict[str, str]:
    """Labels -> the text of the DATE line and of the CITY/STATE/ZIP line."""
    csz = [_value(fields.get(k, NONE)) for k in CSZ_KEYS]
    return {"DATE": _value(fields.get("DATE", NONE)), "CSZ": SEP.join(csz) if any(csz) else ""}


def _field(text: str) -> str:
    text = " ".join(text.split())
    return text if text else NONE


def split_free_text(text: str) -> dict[str, str]:
    """Rules for a CITY/STATE/ZIP reading without its two separators: the trailing digits are
    the ZIP, the word before them the STATE, the rest the CITY."""
    words = text.replace(SEP, " ").split()
    zip_code = words.pop() if words and re.fullmatch(r"[\d-]{3,}", words[-1]) else ""
    state = words.pop() if len(words) > 1 else ""
    return {"CITY": _field(" ".join(words)), "STATE": _field(state), "ZIP": _field(zip_code)}


def fields_from_lines(date_text: str, csz_text: str) -> dict[str, str]:
    """The two line readings -> the four fields ("None" when empty)."""
    parts = csz_text.split(SEP)
    csz = dict(zip(CSZ_KEYS, map(_field, parts))) if len(parts) == 3 else split_free_text(csz_text)
    return {"DATE": _field(date_text.replace(SEP, "")), **csz}


def encode(text: str) -> list[int]:
    """Text -> model output indices (1-based: 0 is the blank); unknown characters are dropped."""
    return [ALPHABET.index(c) + 1 for c in text if c in ALPHABET]


def decode_indices(indices: list[int]) -> str:
    return "".join(ALPHABET[i - 1] for i in indices if i > 0)


assert set(KEYS) == {"DATE", *CSZ_KEYS}
