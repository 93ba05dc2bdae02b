"""Shared by the paid form engines (Textract, Azure): the request image, and key/value pairs
turned into the four fields."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable

from PIL import Image

from handwriting_pipeline.fields import KEYS, NONE, clean_value, move_state_digits_to_zip, normalize_key


def png_bytes(image: Image.Image) -> bytes:
    """The image as PNG bytes (what the API is sent)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def fields_from_pairs(pairs: Iterable[tuple[str, str, float]]) -> tuple[dict[str, str], dict[str, float]]:
    """(key text, value text, confidence 0-1) pairs -> fields and confidences.

    Keys are normalised (``.DATE``, ``E ZIP``, ``STATE\\nZIP`` ...; NAME-like keys dropped); the
    first non-empty value per field wins; digits a service put into STATE move to an empty ZIP.
    Values are kept as written.
    """
    fields = {k: NONE for k in KEYS}
    conf = {k: math.nan for k in KEYS}
    for key_text, value_text, confidence in pairs:
        key = normalize_key(key_text or "")
        value = clean_value(value_text)
        if key is None or value == NONE or fields[key] != NONE:
            continue
        fields[key], conf[key] = value, float(confidence)
    moved = move_state_digits_to_zip(fields)
    if moved["ZIP"] != fields["ZIP"]:
        conf["ZIP"] = conf["STATE"]
    for key in KEYS:
        if moved[key] == NONE:
            conf[key] = math.nan
    return moved, conf
