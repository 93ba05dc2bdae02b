"""Repairs of layout slips that are not the writer's (shared by the engines and the vote)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from handwriting_pipeline.fields.schema import NONE, clean_fields, clean_value
from handwriting_pipeline.fields.states import state_code


def move_state_digits_to_zip(fields: Mapping[str, str]) -> dict[str, str]:
    """Move digits an engine put into STATE ("MI 48813") over to an empty ZIP."""
    out = clean_fields(fields)
    state = out["STATE"]
    if state != NONE and re.search(r"\d", state):
        digits = "".join(re.findall(r"[\d-]+", state)).strip("-")
        letters = clean_value(re.sub(r"[\d-]+", " ", state))
        if out["ZIP"] == NONE and digits:
            out["ZIP"] = digits
        out["STATE"] = letters
    return out


_ZIP_TAIL = re.compile(r"^(.*?)[\s,.]*\b(\d{5}(?:-\d{4})?)\s*$")


def _strip_separators(text: str) -> str:
    return clean_value(re.sub(r"^[\s,;:_]+|[\s,;:_]+$", "", text))


def _looks_like_state(text: str) -> bool:
    code = state_code(text)
    if code is None:
        return False
    letters = re.sub(r"[^A-Za-z]", "", text)
    # a 2-letter code, a traditional abbreviation with a dot, or a full state name
    return len(letters) == 2 or text.strip().endswith(".") or len(letters) >= 4


def _split_state_tail(city: str, is_state=None) -> tuple[str, str] | None:
    """``"UPLAND, CALIFORNIA"`` -> ("UPLAND", "CALIFORNIA"); None when the end is not a state.

    The last comma wins; otherwise the last 3, 2 or 1 words (longest first, so
    "Charleston West Virginia" keeps "West Virginia" together). Something must be left.
    """
    is_state = is_state or _looks_like_state
    text = _strip_separators(city)
    if "," in text:
        head, tail = (part.strip() for part in text.rsplit(",", 1))
        if head and is_state(tail) and state_code(head) is None:
            return head, tail
    words = text.split()
    for n in (3, 2, 1):
        if len(words) > n:
            head, tail = " ".join(words[:-n]), " ".join(words[-n:])
            if re.fullmatch(r"[A-Za-z. ]+", tail) and is_state(tail) and state_code(head) is None:
                return head, tail
    return None


def repair_fields(fields: Mapping[str, Any]) -> dict[str, str]:
    """Undo OCR layout slips without changing a letter's case or spelling.

    * commas/colons/underscores around CITY and STATE (``"Fircrest,"``, ``", FL"``);
    * a CITY that swallowed the ZIP and/or STATE while those fields are empty
      (``"New Alexandria PA 15670"`` -> CITY ``New Alexandria``, STATE ``PA``, ZIP ``15670``);
    * a ZIP-like run of digits (3 or more) in STATE moved to an empty ZIP (dropped from STATE
      when ZIP is filled; :func:`fields.move_state_digits_to_zip`); shorter digit runs such as
      "OH10" are misread letters and are left for the validator to penalise;
    * spaces inside a ZIP (``"48 813"``).
    """
    out = clean_fields(fields)
    city = out["CITY"]
    if city != NONE:
        if out["ZIP"] == NONE:
            m = _ZIP_TAIL.match(city)
            if m and m.group(1).strip():
                city, out["ZIP"] = m.group(1), m.group(2)
        if out["STATE"] == NONE:
            split = _split_state_tail(city)
            if split is not None:
                city, out["STATE"] = split
        elif state_code(out["STATE"]) is not None:
            # the state written again at the end of CITY ("DETROIT MICH" with STATE "MICH")
            code = state_code(out["STATE"])
            split = _split_state_tail(city, lambda tail: state_code(tail) == code)
            if split is not None:
                city = split[0]
        out["CITY"] = _strip_separators(city) or NONE
    # the end of a long city name read into STATE ("HILLS CA" after CITY "LAGUNA")
    state = _strip_separators(out["STATE"]) if out["STATE"] != NONE else NONE
    if (state != NONE and " " in state and out["CITY"] != NONE and not re.search(r"\d", state)
            and state_code(state) is None):  # "West Virginia" stays whole
        split = _split_state_tail(state)
        if split is not None and re.fullmatch(r"[A-Za-z][A-Za-z .'-]*", split[0]):
            out["CITY"] = clean_value(f"{out['CITY']} {split[0].rstrip('-')}")
            out["STATE"] = split[1]
    if re.search(r"\d{3}", out["STATE"]):  # "Tex77625", "MI 48813"; not "OH10" (misread "IO")
        out = move_state_digits_to_zip(out)
    if out["STATE"] != NONE:
        out["STATE"] = _strip_separators(out["STATE"]) or NONE
    if out["ZIP"] != NONE and re.fullmatch(r"[\d\s-]+", out["ZIP"]):
        out["ZIP"] = re.sub(r"\s+", "", out["ZIP"])
    return out
