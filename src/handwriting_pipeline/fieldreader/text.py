"""The field reader's own format: which text each line is trained to read, and back to fields.

A form spec's line with one field reads the field as written. A line with several fields reads
them joined by a separator symbol ``|`` (the HSF CITY/STATE/ZIP line: ``DouglasVILLE|GA.|30134``;
an empty field stays empty: ``Baltimore||21201``), so the model itself learns where the
writer's fields end, from gaps, commas and position — no rules needed to split ``357125`` into
STATE and ZIP afterwards. When a reading does not have one separator fewer than its fields,
:func:`split_words` falls back to rules.

Every function takes the form spec (default: the HSF top section, whose lines are ``DATE`` and
``CSZ``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from handwriting_pipeline.fields import NONE
from handwriting_pipeline.fields.formspec import FormSpec, hsf_form
from handwriting_pipeline.fields.types import type_of

SEP = "|"
# what the recognizer may output (index 0 of the model's output is the CTC blank)
ALPHABET = " ',-./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" + SEP
#: the fields of the HSF form's shared line, from its spec: ("CITY", "STATE", "ZIP")
CSZ_KEYS: tuple[str, ...] = hsf_form().line("CSZ").fields
_NUMBER_CHARS = set("0123456789-")


def _value(text: str) -> str:
    return "" if text == NONE else text


def line_targets(fields: Mapping[str, str], spec: FormSpec | None = None) -> dict[str, str]:
    """Labels -> the text each line of the form is trained to read (line name -> text)."""
    out = {}
    for line in (spec or hsf_form()).lines:
        values = [_value(fields.get(k, NONE)) for k in line.fields]
        out[line.name] = SEP.join(values) if any(values) else ""
    return out


def _field(text: str) -> str:
    text = " ".join(text.split())
    return text if text else NONE


def split_words(text: str, fields: tuple[str, ...], spec: FormSpec | None = None) -> dict[str, str]:
    """Rules for a line reading without its separators, right to left: a field whose type is
    written in digits (and dashes) takes the last word when it is such a number, any other field
    after the first the last word when more than one is left; the first field the rest (the HSF
    line: the trailing digits are the ZIP, the word before them the STATE, the rest the CITY)."""
    spec = spec or hsf_form()
    words, out = text.replace(SEP, " ").split(), {}
    for name in reversed(fields[1:]):
        numeric = set(type_of(spec.field(name)).allowed_chars) <= _NUMBER_CHARS
        take = (bool(words) and re.fullmatch(r"[\d-]{3,}", words[-1]) is not None) if numeric else len(words) > 1
        out[name] = _field(words.pop() if take else "")
    out[fields[0]] = _field(" ".join(words))
    return {name: out[name] for name in fields}


def split_free_text(text: str) -> dict[str, str]:
    """:func:`split_words` on the HSF CITY/STATE/ZIP line."""
    return split_words(text, CSZ_KEYS)


def line_fields(text: str, fields: tuple[str, ...], spec: FormSpec | None = None) -> dict[str, str]:
    """One line's reading -> its fields ("None" when empty)."""
    if len(fields) == 1:
        return {fields[0]: _field(text.replace(SEP, ""))}
    parts = text.split(SEP)
    return dict(zip(fields, map(_field, parts))) if len(parts) == len(fields) else split_words(text, fields, spec)


def fields_of_lines(texts: Mapping[str, str], spec: FormSpec | None = None) -> dict[str, str]:
    """Line readings (line name -> text; a missing line reads "") -> every field of the form, in
    the spec's order."""
    spec = spec or hsf_form()
    out = {}
    for line in spec.lines:
        out.update(line_fields(texts.get(line.name, ""), line.fields, spec))
    return {key: out[key] for key in spec.keys}


def fields_from_lines(date_text: str, csz_text: str) -> dict[str, str]:
    """The HSF form's two line readings -> its four fields ("None" when empty)."""
    return fields_of_lines({"DATE": date_text, "CSZ": csz_text})


def form_alphabet(spec: FormSpec | None = None) -> str:
    """What a reader of the form may output: :data:`ALPHABET` (the HSF reader's, kept as it is),
    then every other character the form's field types allow, in their order."""
    spec = spec or hsf_form()
    extra = [c for f in spec.fields for c in type_of(f).allowed_chars if c not in ALPHABET]
    return ALPHABET + "".join(dict.fromkeys(extra))


def encode(text: str, alphabet: str = ALPHABET) -> list[int]:
    """Text -> model output indices (1-based: 0 is the blank); unknown characters are dropped."""
    return [alphabet.index(c) + 1 for c in text if c in alphabet]


def decode_indices(indices: list[int], alphabet: str = ALPHABET) -> str:
    return "".join(alphabet[i - 1] for i in indices if i > 0)
