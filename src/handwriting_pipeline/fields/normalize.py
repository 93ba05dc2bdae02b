"""Canonical values beside the as-written ones: what a database wants.

The benchmark keeps every field exactly as written; a database wants a real date, the USPS
state code, the city's official spelling and a valid ZIP. :func:`normalize_record` turns the
four as-written fields into these columns (:data:`NORMALIZED_COLUMNS`) and never changes the
written values themselves:

* ``DATE_iso``: ``YYYY-MM-DD`` parsed with :mod:`dateutil` (US order, month first) from the
  shapes people write (``8/28/89``, ``08-28-1989``, ``Aug. 28, 1989``, ``Sept.16/89``,
  ``28 Aug 89``, ``082889``); 2-digit years fall in the window
  ``[two_digit_year_from, two_digit_year_from + 99]``. A date without day, month or year
  (``Aug 8``, ``08-89``) or that is not a calendar date gives ``""``.
* ``STATE_code``: USPS code from codes, abbreviations and names in any case and punctuation
  (``ky``, ``Ky.``, ``Calif.``, ``N.Dak.``, ``North CAROliNA``, a name misspelled by at most
  ``state_name_max_edits`` letters), ``""`` when not a state.
* ``ZIP5`` / ``ZIP4``: the five digits and the +4 part (``""`` when absent); ``""`` for
  both when the ZIP is not 5 or 9 digits.
* ``CITY_name``: the gazetteer's spelling (offline ``zipcodes``) when ZIP5 lies in STATE_code
  and the written city matches one of that ZIP's cities in that state up to case, punctuation,
  spaces, abbreviated words (``Ft.``, ``Mt``, ``No.``, ``Hts.``) and ``city_max_edits`` edits;
  otherwise the written text title-cased (not verified).
* ``<FIELD>_verified``: DATE: a complete calendar date; STATE and ZIP: the ZIP lies in that
  state in the gazetteer; CITY: the name came from the gazetteer (so CITY, STATE and ZIP agree).

The option defaults (:data:`DEFAULT_OPTIONS`) equal ``evaluation.normalize`` in
``conf/base/parameters_evaluation.yml`` (a test checks it).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from dateutil import parser as date_parser
from rapidfuzz.distance import Levenshtein

from handwriting_pipeline.fields import (
    STATE_NAMES,
    clean_fields,
    is_missing,
    state_code,
)

#: Normalized value of each as-written field (the columns compared by the normalized metrics).
NORMALIZED_FIELD: dict[str, str] = {"DATE": "DATE_iso", "CITY": "CITY_name", "STATE": "STATE_code", "ZIP": "ZIP5"}
#: Every column :func:`normalize_record` returns, in order.
NORMALIZED_COLUMNS: list[str] = ["DATE_iso", "DATE_verified", "CITY_name", "CITY_verified", "STATE_code",
                                 "STATE_verified", "ZIP5", "ZIP4", "ZIP_verified"]
#: Same values as ``evaluation.normalize`` in conf/base/parameters_evaluation.yml.
DEFAULT_OPTIONS: dict[str, int] = {"two_digit_year_from": 1900, "city_max_edits": 2, "state_name_max_edits": 1}

# AP-style abbreviation that neither the USPS codes nor fields.STATE_ABBREVIATIONS cover
# ("W.Va."); "N.Dak.", "S.Dak.", "N.Mex." are matched word by word against the state names.
_EXTRA_STATE_ABBREVIATIONS = {"WVA": "WV"}


@dataclass(frozen=True)
class NormalizeOptions:
    """How far normalization may go (see the module docstring)."""

    two_digit_year_from: int = DEFAULT_OPTIONS["two_digit_year_from"]
    city_max_edits: int = DEFAULT_OPTIONS["city_max_edits"]
    state_name_max_edits: int = DEFAULT_OPTIONS["state_name_max_edits"]

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | NormalizeOptions | None) -> NormalizeOptions:
        """From ``params:evaluation``'s ``normalize`` mapping (None -> defaults); unknown keys fail."""
        if isinstance(params, NormalizeOptions):
            return params
        params = dict(params or {})
        unknown = set(params) - set(DEFAULT_OPTIONS)
        if unknown:
            raise ValueError(f"evaluation.normalize: unknown options {sorted(unknown)}; "
                             f"known: {sorted(DEFAULT_OPTIONS)}")
        return cls(**{k: int(v) for k, v in params.items()})


# --------------------------------------------------------------------------- DATE
class _YearWindow(date_parser.parserinfo):
    """dateutil's parser info with 2-digit years in ``[start, start + 99]`` (US month-first)."""

    def __init__(self, start: int) -> None:
        super().__init__(dayfirst=False, yearfirst=False)
        self.start = start

    def convertyear(self, year: int, century_specified: bool = False) -> int:
        if year < 100 and not century_specified:
            return self.start + (year - self.start) % 100
        return year


@lru_cache(maxsize=64)
def _parserinfo(start: int) -> _YearWindow:
    return _YearWindow(start)


def _fix_month_word(word: str, info: date_parser.parserinfo) -> str:
    """A misspelled month ("Aus", "Setp") -> the month dateutil knows, when exactly one month
    name or abbreviation is one edit away; other words unchanged."""
    if len(word) < 3 or info.month(word) is not None or word.lower() in info.JUMP:
        return word
    months = {i for i, names in enumerate(info.MONTHS)
              if any(Levenshtein.distance(word.lower(), n.lower()) <= 1 for n in names)}
    return info.MONTHS[months.pop()][-1] if len(months) == 1 else word


def _date_text(value: str, info: date_parser.parserinfo) -> str:
    """Written date -> text dateutil reads unambiguously (separators, run-together parts)."""
    text = unicodedata.normalize("NFKC", value).strip()
    packed = re.fullmatch(r"(\d{2})(\d{2})(\d{2}|\d{4})", text)  # 082889, 08281989: MMDDYY(YY)
    if packed:
        return "/".join(packed.groups())
    text = re.sub(r"(?<=\d)(st|nd|rd|th)\b", "", text, flags=re.IGNORECASE)  # 28th
    text = re.sub(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", text)  # AUG89, August25
    if re.search(r"[A-Za-z]", text):  # month word + day and 4-digit year run together: Sept 191989
        text = re.sub(r"\b(\d{1,2})((?:1[89]|20)\d{2})\b", r"\1 \2", text)
    text = re.sub(r"[.,']", " ", text)  # "Aug. 23.89" would otherwise read 23.89 as a number
    return re.sub(r"[A-Za-z]+", lambda m: _fix_month_word(m.group(0), info), text)


@lru_cache(maxsize=100_000)
def normalize_date(value: str, two_digit_year_from: int = DEFAULT_OPTIONS["two_digit_year_from"]) -> str:
    """``YYYY-MM-DD`` for a written date, ``""`` when it is not a complete calendar date."""
    if is_missing(value):
        return ""
    info = _parserinfo(int(two_digit_year_from))
    text = _date_text(str(value), info)
    try:  # two different defaults: a part the text lacks shows up as a difference
        first = date_parser.parse(text, parserinfo=info, default=datetime(2000, 1, 1))
        second = date_parser.parse(text, parserinfo=info, default=datetime(2001, 2, 2))
    except (ValueError, OverflowError, TypeError):
        return ""
    if first != second or first.time() != datetime.min.time() or first.year < 1000:
        return ""
    return first.date().isoformat()


# --------------------------------------------------------------------------- STATE
@lru_cache(maxsize=10_000)
def normalize_state(value: str, state_name_max_edits: int = DEFAULT_OPTIONS["state_name_max_edits"]) -> str:
    """USPS code for a written STATE, ``""`` when it is not recognisably a state."""
    if is_missing(value):
        return ""
    code = state_code(str(value))  # codes, names, traditional abbreviations, any case and dots
    if code:
        return code
    words = re.findall(r"[A-Z]+", unicodedata.normalize("NFKC", str(value)).upper())
    compact = "".join(words)
    if compact in _EXTRA_STATE_ABBREVIATIONS:
        return _EXTRA_STATE_ABBREVIATIONS[compact]
    if len(words) >= 2:  # "N.Dak.", "So. Carolina": each word starts the name's word
        hits = [c for c, name in STATE_NAMES.items() if len(name.split()) == len(words)
                and all(n.upper().startswith(w) for w, n in zip(words, name.split()))]
        if len(hits) == 1:
            return hits[0]
    if len(compact) >= 5 and state_name_max_edits > 0:  # "IDAMO", "WinscoNsiN"
        dist = {c: Levenshtein.distance(compact, name.upper().replace(" ", "")) for c, name in STATE_NAMES.items()}
        best = min(dist.values())
        hits = [c for c, d in dist.items() if d == best]
        if best <= state_name_max_edits and len(hits) == 1:
            return hits[0]
    return ""


# --------------------------------------------------------------------------- ZIP
def normalize_zip(value: str) -> tuple[str, str]:
    """(ZIP5, ZIP4) from a written ZIP (digits with optional spaces, dots or a hyphen);
    ``("", "")`` when it is not 5 or 9 digits."""
    if is_missing(value) or not re.fullmatch(r"[\d\s.\-]+", str(value)):
        return "", ""
    digits = re.sub(r"\D", "", str(value))
    if len(digits) == 5:
        return digits, ""
    if len(digits) == 9:
        return digits[:5], digits[5:]
    return "", ""


@lru_cache(maxsize=100_000)
def zip_cities(zip5: str) -> tuple[tuple[str, str], ...]:
    """(city as the gazetteer spells it, state code) for a 5-digit ZIP: the USPS city and its
    acceptable alternatives (offline ``zipcodes``). Empty when the ZIP is unknown."""
    import zipcodes

    if not re.fullmatch(r"\d{5}", zip5 or ""):
        return ()
    try:
        rows = zipcodes.matching(zip5)
    except (ValueError, TypeError):
        return ()
    places = [(city, row["state"].upper()) for row in rows
              for city in [row["city"], *(row.get("acceptable_cities") or [])]]
    return tuple(dict.fromkeys(places))


# --------------------------------------------------------------------------- CITY
def title_case(text: str) -> str:
    """Written text with each word capitalised ("DouglasVILLE" -> "Douglasville",
    "o'fallon" -> "O'Fallon"), spaces collapsed, trailing commas/dots dropped."""
    text = re.sub(r"\s+", " ", str(text)).strip().rstrip(",;:").strip()
    return re.sub(r"[A-Za-z]+", lambda m: m.group(0).capitalize(), text)


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Z]+", unicodedata.normalize("NFKC", str(text)).upper())


def _abbreviates(short: str, word: str) -> bool:
    """``short`` is ``word`` shortened by dropping letters, first letter kept ("FT" of "FORT",
    "HTS" of "HEIGHTS", "NO" of "NORTH")."""
    if not short or short[0] != word[0] or len(short) > len(word):
        return False
    rest = iter(word)
    return all(ch in rest for ch in short)


def _city_distance(written: list[str], name: list[str]) -> int:
    """Edits between a written city and a gazetteer name, case, punctuation and spaces ignored;
    a written word that abbreviates the name's word ("St.", "Mt", "No.", "Hts.") costs nothing."""
    if _abbreviates("".join(written), "".join(name)):  # "StLouis", "PHILA", "Bham"
        return 0
    compact = Levenshtein.distance("".join(written), "".join(name))
    if len(written) != len(name):
        return compact
    wordwise = sum(0 if _abbreviates(w, n) else Levenshtein.distance(w, n) for w, n in zip(written, name))
    return min(compact, wordwise)


def _gazetteer_names(zip5: str, state: str) -> list[str]:
    """The names of a ZIP's cities in ``state``, the USPS city first, without the names that
    merely abbreviate another one ("N Hollywood" of "North Hollywood")."""
    names = [name for name, st in zip_cities(zip5) if state and st == state]

    def shortens(a: list[str], b: list[str]) -> bool:
        return a != b and len(a) == len(b) and all(_abbreviates(x, y) for x, y in zip(a, b))

    return [n for n in names if not any(shortens(_words(n), _words(m)) for m in names)]


def normalize_city(city: str, state: str, zip5: str,
                   city_max_edits: int = DEFAULT_OPTIONS["city_max_edits"]) -> tuple[str, bool]:
    """(CITY_name, verified): the gazetteer's spelling when ZIP5 lies in ``state`` (a USPS code)
    and the written city is within ``city_max_edits`` edits of one of that ZIP's cities there
    (case, punctuation and spaces ignored, abbreviated words free: "Ft." = "Fort"); otherwise
    the written text title-cased and False."""
    if is_missing(city):
        return "", False
    candidates = _gazetteer_names(zip5, state)
    written = _words(city)
    if candidates and written:
        dist = [_city_distance(written, _words(name)) for name in candidates]
        best = min(dist)
        if best <= city_max_edits:
            return candidates[dist.index(best)], True
    return title_case(city), False


# --------------------------------------------------------------------------- one record
def normalize_record(fields: Mapping[str, Any],
                     options: Mapping[str, Any] | NormalizeOptions | None = None) -> dict[str, Any]:
    """The normalized columns (:data:`NORMALIZED_COLUMNS`) for one form's as-written fields.

    Args:
        fields: DATE, CITY, STATE, ZIP as written (missing / "None" allowed; other keys ignored).
        options: ``evaluation.normalize`` parameters (None -> :data:`DEFAULT_OPTIONS`).

    Returns:
        ``DATE_iso``, ``CITY_name``, ``STATE_code``, ``ZIP5``, ``ZIP4`` (strings, ``""`` when
        there is no canonical value) and ``DATE_verified``, ``CITY_verified``,
        ``STATE_verified``, ``ZIP_verified`` (bools). The input is not modified.
    """
    opts = NormalizeOptions.from_params(options)
    written = clean_fields(fields)
    date_iso = normalize_date(written["DATE"], opts.two_digit_year_from)
    state = normalize_state(written["STATE"], opts.state_name_max_edits)
    zip5, zip4 = normalize_zip(written["ZIP"])
    in_state = bool(state) and any(st == state for _, st in zip_cities(zip5))
    city, city_ok = normalize_city(written["CITY"], state, zip5, opts.city_max_edits)
    return {"DATE_iso": date_iso, "DATE_verified": bool(date_iso), "CITY_name": city, "CITY_verified": city_ok,
            "STATE_code": state, "STATE_verified": in_state, "ZIP5": zip5, "ZIP4": zip4, "ZIP_verified": in_state}
