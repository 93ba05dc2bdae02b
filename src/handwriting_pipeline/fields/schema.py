"""The answer's schema and its clean-up: the four keys, "None", value cleaning and the
normalisation of the noisy keys form services return.

The keys and their character sets come from the HSF form's spec (``conf/base/forms/hsf_top.yml``,
:func:`handwriting_pipeline.fields.formspec.hsf_form`) and the field types' characters
(:mod:`handwriting_pipeline.fields.charsets`)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from handwriting_pipeline.fields.charsets import CHARS
from handwriting_pipeline.fields.formspec import hsf_form

_FORM = hsf_form()  # conf/base/forms/hsf_top.yml, read and checked once

#: the answer's keys: the HSF form's fields, in the spec's order ("DATE", "CITY", "STATE", "ZIP")
KEYS: tuple[str, ...] = _FORM.keys
NONE = "None"

#: characters an engine may output for each field (used to filter OCR output): the field's type's
#: ``allowed`` characters (:data:`handwriting_pipeline.fields.charsets.CHARS`)
ALLOWED_CHARS: dict[str, str] = {f.name: CHARS[f.type].allowed for f in _FORM.fields}

#: characters a person may type for a field when correcting a reading (review page, Label Studio
#: import): what the engines may output plus what writers put on the real forms (commas after
#: CITY or STATE, a digit in a CITY); never control characters or markup. The type's ``written``
#: characters.
WRITTEN_CHARS: dict[str, str] = {f.name: CHARS[f.type].written for f in _FORM.fields}
MAX_WRITTEN_LENGTH = 40

# --------------------------------------------------------------------------- values
def is_missing(value: Any) -> bool:
    """True for values that mean "field not filled": None, NaN, "", "None", "null"."""
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN
        return True
    text = str(value).strip()
    return text == "" or text.lower() in {"none", "null", "nan", "n/a"}


def clean_value(value: Any) -> str:
    """One field value as a stripped string, "None" when missing. Case and punctuation kept."""
    if is_missing(value):
        return NONE
    return re.sub(r"\s+", " ", str(value)).strip()


def clean_fields(fields: Mapping[str, Any] | None, keys: tuple[str, ...] | None = None) -> dict[str, str]:
    """Exactly the form's keys (default: the HSF form's four), each a string ("None" when
    missing); other keys dropped.

    The HSF keys are matched after :func:`normalize_key`, so ``{"date": "8/28/89"}`` works too;
    another form's ``keys`` are matched by name, ignoring case.
    """
    if keys is not None and tuple(keys) != KEYS:
        given = {str(k).strip().upper(): v for k, v in (fields or {}).items()}
        return {k: clean_value(given.get(k.upper())) for k in keys}
    out = {k: NONE for k in KEYS}
    if not fields:
        return out
    for raw_key, value in fields.items():
        key = normalize_key(str(raw_key))
        if key is not None and out[key] == NONE:
            out[key] = clean_value(value)
    return out


def empty_fields() -> dict[str, str]:
    """The answer for a blank or unreadable form: all four keys "None"."""
    return {k: NONE for k in KEYS}


# --------------------------------------------------------------------------- keys
_KEY_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("DATE", re.compile(r"DATE")),
    ("CITY", re.compile(r"CITY")),
    ("STATE", re.compile(r"STATE|STAT")),
    ("ZIP", re.compile(r"ZIP")),
]


def normalize_key(raw: str) -> str | None:
    """Map a noisy form key to DATE/CITY/STATE/ZIP, or None to drop it.

    Handles what OCR services return around printed labels: ``.DATE``, ``DATE.``,
    ``·DATE``, ``-DATE``, ``DATE®``, ``_ZIP``, ``.ZIP``, ``E ZIP`` and ``STATE\\nZIP``
    (the last one of a multi-line key wins, it sits nearest the value). NAME-like keys
    and anything unrecognised give None.
    """
    text = unicodedata.normalize("NFKC", raw).upper()
    # keep letters and line breaks only, so ".DATE", "DATE®" and "_ZIP" become plain words
    lines = [re.sub(r"[^A-Z ]", " ", line).split() for line in text.splitlines()]
    words = [w for line in lines for w in line]
    if not words:
        return None
    if any(w.startswith("NAM") or w == "NAME" for w in words) and not any(
        p.search(w) for w in words for _, p in _KEY_PATTERNS
    ):
        return None
    for word in reversed(words):  # nearest to the value first
        for key, pattern in _KEY_PATTERNS:
            if pattern.fullmatch(word) or (len(word) > 2 and pattern.search(word)):
                return key
    return None


def row_fields(row: Mapping[str, Any]) -> dict[str, str]:
    """The four fields of a predictions/labels row (only the KEYS columns: ``clean_fields`` on a
    whole row would let ``CITY_conf`` stand in for a missing CITY)."""
    return clean_fields({k: row.get(k) for k in KEYS})
