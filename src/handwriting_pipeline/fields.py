"""Field logic shared by every stage: the four keys, "None", key normalisation,
validators, and the JSON <-> Donut token sequence conversion.

Everything that knows what a DATE, CITY, STATE or ZIP looks like lives here, so engines,
ensembles, training and evaluation agree on one definition.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from typing import Any

KEYS: tuple[str, ...] = ("DATE", "CITY", "STATE", "ZIP")
NONE = "None"
TASK_TOKEN = "<s_hsf>"

# Characters a writer can put in each field (used to filter OCR output).
ALLOWED_CHARS: dict[str, str] = {
    "DATE": "0123456789/-.,' ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "CITY": " .-'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "STATE": " .ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "ZIP": "0123456789-",
}

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

MONTHS = {
    "JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8,
    "SEP": 9, "SEPT": 9, "OCT": 10, "NOV": 11, "DEC": 12,
}


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


def clean_fields(fields: Mapping[str, Any] | None) -> dict[str, str]:
    """Exactly the four keys, each a string ("None" when missing); other keys dropped.

    Keys are matched after :func:`normalize_key`, so ``{"date": "8/28/89"}`` works too.
    """
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


# --------------------------------------------------------------------------- validators
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


def _month(word: str) -> int | None:
    word = word.upper().rstrip(".")
    return MONTHS.get(word[:4]) or MONTHS.get(word[:3])


def parse_date(value: str) -> date | None:
    """Best-effort parse of a handwritten date: "8/28/89", "08-28-1989", "8 28 89",
    "Aug. 28, 1989", "Sept 9, '89", "28 Aug 89". None when it is not a date."""
    if is_missing(value):
        return None
    text = value.strip().rstrip(".,")
    year_re = r"'?(\d{2}|\d{4})"
    numeric = re.fullmatch(rf"(\d{{1,2}})\s*[/\-. ]\s*(\d{{1,2}})\s*[/\-. ]\s*{year_re}", text)
    month_first = re.fullmatch(
        rf"([A-Za-z]{{3,9}})\.?[\s,\-]*(\d{{1,2}})(?:st|nd|rd|th)?\s*[,./\-]?\s*{year_re}", text
    )
    day_first = re.fullmatch(rf"(\d{{1,2}})\s*([A-Za-z]{{3,9}})\.?\s*[,.]?\s*{year_re}", text)
    if numeric:
        month, day, year = (int(g) for g in numeric.groups())
    elif month_first and _month(month_first.group(1)):
        month, day, year = _month(month_first.group(1)), int(month_first.group(2)), int(month_first.group(3))
    elif day_first and _month(day_first.group(2)):
        month, day, year = _month(day_first.group(2)), int(day_first.group(1)), int(day_first.group(3))
    else:
        return None
    if year < 100:
        year += 1900
    try:
        return date(year, month, day)
    except ValueError:
        return None


def is_plausible_date(value: str) -> bool:
    """DATE parses to a real calendar date between 1900 and 2099."""
    parsed = parse_date(value)
    return parsed is not None and 1900 <= parsed.year <= 2099


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


# --------------------------------------------------------------------------- Donut tokens
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
