"""Readings checked against the offline ZIP database (``zipcodes``): a STATE or CITY a slip or
two away from what the ZIP's entry lists, or a ZIP one digit away from the only ZIP of its CITY
and STATE, is respelled in the writer's case (:func:`gazetteer_check`). Used by the layout
engines after they split CITY/STATE/ZIP; the vote only reads the gazetteer, never rewrites."""

from __future__ import annotations

import re

from handwriting_pipeline.fields.schema import NONE
from handwriting_pipeline.fields.states import (
    STATE_ABBREVIATIONS,
    STATE_NAMES,
    is_valid_zip,
    state_code,
    zip_places,
    zips_for_place,
)
from handwriting_pipeline.fields.text import edit_distance, respell


def _state_spellings(code: str) -> list[str]:
    return list(dict.fromkeys([code, STATE_NAMES[code], *[a for a, c in STATE_ABBREVIATIONS.items() if c == code]]))


def gazetteer_check(values: dict[str, str]) -> dict[str, str]:
    """Pick between candidate readings with the offline ZIP database; never changes case.

    * STATE that is no state, one edit away from a spelling of the ZIP's state -> that
      spelling in the writer's case ("Cn" + 92056 -> "CA", "HASS" + 02368 -> "MASS").
    * CITY a few edits away from a city the ZIP's database entry lists -> that city's letters
      and spaces in the writer's case ("EIKGrove Village" -> "ElK Grove Village" style fixes).
    * ZIP one digit away from the only ZIP listed for CITY + STATE -> that ZIP.
    """
    out = dict(values)
    zip5 = out["ZIP"][:5]
    places = zip_places(zip5) if is_valid_zip(out["ZIP"]) else ()
    code = state_code(out["STATE"]) if out["STATE"] != NONE else None
    if places and out["STATE"] != NONE and code is None:
        states = {st for _, st in places}
        if len(states) == 1:
            written = re.sub(r"[^A-Za-z]", "", out["STATE"])
            limit = 2 if len(written) >= 6 else 1  # "OLAItOMA" -> "OKLAHOMA", "UA" -> "VA"
            options = [sp for sp in _state_spellings(states.pop())
                       if 1 <= edit_distance(written, sp.replace(" ", "")) <= limit and len(written) >= 2]
            if len(options) == 1:
                dots = out["STATE"].endswith(".")
                out["STATE"] = respell(written, options[0]) + ("." if dots else "")
                code = state_code(out["STATE"])
    city = out["CITY"]
    if places and city != NONE and "." not in city:
        written = re.sub(r"[^A-Za-z]", "", city)
        cities = {c for c, st in places if code is None or st == code}
        scored = sorted((edit_distance(written, c.replace(" ", "")), c) for c in cities)
        limit = 1 if len(written) <= 6 else 2 if len(written) <= 12 else 3
        if scored and scored[0][0] <= limit and (len(scored) == 1 or scored[1][0] > scored[0][0]):
            best = scored[0][1]
            if scored[0][0] or best.count(" ") != city.strip().count(" "):  # spelling or spacing
                out["CITY"] = respell(city, best.title())
    if out["CITY"] != NONE and out["STATE"] != NONE and code:
        known = zips_for_place(out["CITY"], out["STATE"])
        digits = re.sub(r"\D", "", out["ZIP"])
        if known and digits[:5] not in known and len(digits) in (4, 5, 6):
            close = [z for z in known if edit_distance(digits[:5] if len(digits) != 4 else digits, z) == 1]
            if len(close) == 1 and (len(digits) == 5 or "-" not in out["ZIP"]):
                out["ZIP"] = close[0]
    return out

