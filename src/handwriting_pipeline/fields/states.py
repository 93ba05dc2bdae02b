"""US states and ZIP codes: USPS codes, names and traditional abbreviations, validators and the
offline ``zipcodes`` gazetteer (which places a ZIP belongs to, which ZIPs a place has), and
STATE look-alike readings (:func:`state_variant`)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache
from itertools import product

from handwriting_pipeline.fields.schema import NONE, clean_value, is_missing
from handwriting_pipeline.fields.text import filter_chars

STATE_NAMES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan",
    "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
    "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
    "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota",
    "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee",
    "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington",
    "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming", "PR": "Puerto Rico",
}
# Traditional (pre-USPS) abbreviations people still wrote in 1989: "Ky.", "Calif.", "Mich."
STATE_ABBREVIATIONS: dict[str, str] = {
    "ALA": "AL", "ARIZ": "AZ", "ARK": "AR", "CALIF": "CA", "CAL": "CA", "COLO": "CO",
    "CONN": "CT", "DEL": "DE", "FLA": "FL", "ILL": "IL", "IND": "IN", "KAN": "KS",
    "KANS": "KS", "MASS": "MA", "MICH": "MI", "MINN": "MN", "MISS": "MS", "MONT": "MT",
    "NEB": "NE", "NEBR": "NE", "NEV": "NV", "OKLA": "OK", "ORE": "OR", "OREG": "OR",
    "PENN": "PA", "PENNA": "PA", "TENN": "TN", "TEX": "TX", "WASH": "WA", "WIS": "WI",
    "WISC": "WI", "WYO": "WY", "VA": "VA",
}
_NAME_TO_CODE = {name.upper(): code for code, name in STATE_NAMES.items()}

def _letters(text: str) -> str:
    return re.sub(r"[^A-Za-z ]", "", text).strip()


def state_code(value: str) -> str | None:
    """USPS code for a STATE as written ("KY", "Ky.", "ky", "Kentucky", "Calif."), or None."""
    if is_missing(value):
        return None
    letters = re.sub(r"\s+", " ", _letters(value)).upper()
    compact = letters.replace(" ", "")
    if compact in STATE_NAMES:
        return compact
    if letters in _NAME_TO_CODE:
        return _NAME_TO_CODE[letters]
    if compact in STATE_ABBREVIATIONS:
        return STATE_ABBREVIATIONS[compact]
    for name, code in _NAME_TO_CODE.items():
        if name.replace(" ", "") == compact:
            return code
    return None


def is_valid_state(value: str) -> bool:
    """STATE is a USPS code, a traditional abbreviation or a state name (any case, dots)."""
    return state_code(value) is not None


def is_valid_zip(value: str) -> bool:
    """ZIP is 5 digits or ZIP+4 (``12345-6789``)."""
    return bool(re.fullmatch(r"\d{5}(-\d{4})?", clean_value(value)))


@lru_cache(maxsize=100_000)
def zip_places(zip_code: str) -> tuple[tuple[str, str], ...]:
    """(CITY upper-case, STATE code) pairs the offline ``zipcodes`` database has for a ZIP."""
    import zipcodes

    digits = re.sub(r"\D", "", zip_code)[:5]
    if len(digits) != 5:
        return ()
    try:
        rows = zipcodes.matching(digits)
    except (ValueError, TypeError):
        return ()
    places = []
    for row in rows:
        places.append((row["city"].upper(), row["state"].upper()))
        for alias in row.get("acceptable_cities") or []:
            places.append((alias.upper(), row["state"].upper()))
    return tuple(dict.fromkeys(places))


def zip_consistent(fields: Mapping[str, str]) -> bool | None:
    """Do ZIP, STATE (and CITY when given) agree in the gazetteer? None when undecidable."""
    places = zip_places(fields.get("ZIP", NONE)) if is_valid_zip(fields.get("ZIP", NONE)) else ()
    if not places:
        return None
    code = state_code(fields.get("STATE", NONE))
    city = fields.get("CITY", NONE)
    ok = [p for p in places if code is None or p[1] == code]
    if not ok:
        return False
    if is_missing(city):
        return True
    city_key = re.sub(r"[^A-Z]", "", city.upper())
    return any(re.sub(r"[^A-Z]", "", c) == city_key for c, _ in ok)


#: the fields a gazetteer contradiction puts in doubt (one of them is wrong)
CONTRADICTION_FIELDS: dict[str, tuple[str, ...]] = {"unknown_zip": ("ZIP",), "state": ("STATE", "ZIP"),
                                                    "city": ("CITY", "ZIP")}


def gazetteer_contradiction(fields: Mapping[str, str]) -> str | None:
    """What the offline gazetteer says is wrong with a CITY / STATE / ZIP reading, or None:

    * ``"unknown_zip"`` - a well-formed ZIP the database does not list;
    * ``"state"`` - the ZIP lies in another state than the STATE written (a USPS state);
    * ``"city"`` - ZIP and STATE agree (or STATE is not a state) but the ZIP lists no such CITY.

    None when they agree or the gazetteer cannot tell (no well-formed ZIP). Reads only."""
    zip_code = fields.get("ZIP", NONE)
    if not is_valid_zip(zip_code):
        return None
    places = zip_places(zip_code)
    if not places:
        return "unknown_zip"
    state = fields.get("STATE", NONE)
    code = None if is_missing(state) or re.search(r"\d", state) else state_code(state)
    if code is not None and all(s != code for _, s in places):
        return "state"
    city = fields.get("CITY", NONE)
    if not is_missing(city):
        key = re.sub(r"[^A-Z]", "", city.upper())
        if not any(re.sub(r"[^A-Z]", "", c) == key and (code is None or s == code) for c, s in places):
            return "city"
    return None


@lru_cache(maxsize=1)
def _place_index() -> dict[tuple[str, str], tuple[str, ...]]:
    import zipcodes

    index: dict[tuple[str, str], list[str]] = {}
    for row in zipcodes.list_all():
        for city in [row["city"], *(row.get("acceptable_cities") or [])]:
            key = (re.sub(r"[^A-Z]", "", city.upper()), row["state"].upper())
            index.setdefault(key, []).append(row["zip_code"])
    return {k: tuple(v) for k, v in index.items()}


def zips_for_place(city: str, state: str) -> tuple[str, ...]:
    """5-digit ZIPs the offline ``zipcodes`` database lists for a CITY in a STATE (any case,
    spaces and punctuation ignored; STATE as code, name or abbreviation). Empty when unknown."""
    code = state_code(state)
    if code is None or is_missing(city):
        return ()
    return _place_index().get((re.sub(r"[^A-Z]", "", city.upper()), code), ())


# --------------------------------------------------------------------------- OCR slips
_STATE_LOOKALIKES = {"1": "lI", "I": "l", "l": "I", "0": "O", "5": "S", "|": "lI", "2": "Z", "8": "B",
                     "4": "Y", "u": "W"}


def state_variant(text: str) -> str:
    """STATE as written, allowed characters only. When that is no state, a variant with
    look-alikes swapped (``F1.`` -> ``Fl.``, ``II.`` -> ``Il.``) that is a state, if exactly
    one is."""
    plain = filter_chars(text, "STATE")
    if not plain or len(text) > 16 or (state_code(plain) and not re.search(r"[0-9|]", text)):
        return plain
    options = [[ch, *_STATE_LOOKALIKES.get(ch, "")] for ch in text]
    if math.prod(len(o) for o in options) > 64:
        return plain
    found: dict[str, int] = {}
    for combo in product(*options):
        joined = "".join(combo)
        cand = filter_chars(joined, "STATE")
        if cand and cand != plain and state_code(cand):
            dropped = len(joined) - len(cand)  # characters the filter had to remove
            found[cand] = min(dropped, found.get(cand, dropped))
    if not found:
        return plain
    if state_code(plain) and min(found.values()) > 0:
        return plain  # as read is a state, and no look-alike reading uses every character
    fewest = min(found.values())
    best = [c for c, d in found.items() if d == fewest]
    return best[0] if len(best) == 1 else plain
