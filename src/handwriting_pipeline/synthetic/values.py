"""Field values as a form filler would write them: dates, real city/state/ZIP triples, and a
sampler for every field type (:data:`VALUE_SAMPLERS`).

Places come from the offline ``zipcodes`` database (active STANDARD ZIP codes, so big cities,
which have many ZIPs, come up more often, like on the real forms). Case, dots and spelling
variants are chosen here; the string returned is exactly what the generator draws.

:data:`VALUE_SAMPLERS` maps each field type's name (:data:`..fields.types.FIELD_TYPES`) to
``sampler(rng, field_type, context) -> str``: a value as written for a field of that type and
its options (digits of the right length, the amount's decimals, a choice's options). ``context``
is one dict per form, shared by its fields: the US city, state and ZIP of one form come from one
gazetteer place (kept under ``context["place"]``). A checkbox may come back "None" (left blank).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from handwriting_pipeline.fields import ALLOWED_CHARS, NONE, STATE_ABBREVIATIONS, STATE_NAMES
from handwriting_pipeline.fields.types import FieldType

MONTH_SHORT = ["Jan", "Feb", "Mar", "Apr", "May", "June", "July", "Aug", "Sept", "Oct", "Nov", "Dec"]
# traditional abbreviations per USPS code ("Calif.", "Tex."), from fields.STATE_ABBREVIATIONS
TRADITIONAL: dict[str, list[str]] = {}
for _abbr, _code in STATE_ABBREVIATIONS.items():
    if _abbr != _code:
        TRADITIONAL.setdefault(_code, []).append(_abbr.title())


def _pick(rng: np.random.Generator, options: list, weights: list[float]):
    w = np.asarray(weights, dtype=float)
    return options[int(rng.choice(len(options), p=w / w.sum()))]


def sample_date(rng: np.random.Generator) -> str:
    """A DATE as written: mostly Aug/Sep 1989 numeric (8/28/89, 08-28-89), sometimes spelled out."""
    year = 1989 if rng.random() < 0.93 else int(rng.integers(1980, 1992))
    month = int(_pick(rng, [8, 9, 7, 10, int(rng.integers(1, 13))], [45, 35, 5, 5, 10]))
    day = int(rng.integers(1, calendar.monthrange(year, month)[1] + 1))
    yy, yyyy = f"{year % 100:02d}", str(year)
    style = _pick(rng, ["numeric", "month", "day_month"], [84, 14, 2])
    if style == "numeric":
        sep = _pick(rng, ["/", "-", ".", " "], [48, 44, 6, 2])
        pad = rng.random() < 0.35
        m = f"{month:02d}" if pad else str(month)
        d = f"{day:02d}" if pad or rng.random() < 0.05 else str(day)
        y = yyyy if rng.random() < 0.05 else yy
        if rng.random() < 0.02:
            y = "'" + yy
        return f"{m}{sep}{d}{sep}{y}"
    name = _pick(
        rng,
        [MONTH_SHORT[month - 1], calendar.month_name[month], calendar.month_abbr[month]],
        [50, 30, 20],
    )
    case = _pick(rng, ["title", "upper", "lower"], [70, 26, 4])
    name = {"title": name, "upper": name.upper(), "lower": name.lower()}[case]
    dot = "." if len(name) <= 4 and name.lower() not in ("may", "june", "july") and rng.random() < 0.45 else ""
    y = yy if rng.random() < 0.12 else yyyy
    if style == "day_month":
        return f"{day} {name}{dot} {y}"
    comma = _pick(rng, [", ", ",", " "], [50, 35, 15])
    return f"{name}{dot} {day}{comma}{y}"


@lru_cache(maxsize=1)
def zip_table() -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
    """(zip, city, state, acceptable other city names) for active STANDARD ZIPs of the 50 states + DC."""
    import zipcodes

    allowed = set(ALLOWED_CHARS["CITY"])
    rows = []
    for row in zipcodes.list_all():
        if row.get("zip_code_type") != "STANDARD" or not row.get("active", True):
            continue
        if row["state"] not in STATE_NAMES or row["state"] == "PR":
            continue
        city = row["city"]
        if not city or not set(city) <= allowed:
            continue
        aliases = tuple(c for c in row.get("acceptable_cities") or [] if c and set(c) <= allowed)
        rows.append((row["zip_code"], city, row["state"], aliases))
    return tuple(rows)


def _mixed_case(rng: np.random.Generator, text: str) -> str:
    """Writers who mix cases: "DouglasVILLE", "BEmIDJI", "WAlNut"."""
    if rng.random() < 0.5 and len(text) > 5:  # upper-case tail or head
        cut = int(rng.integers(2, len(text) - 1))
        return text[:cut].title() + text[cut:].upper() if rng.random() < 0.6 else text[:cut].upper() + text[cut:].lower()
    base = text.upper() if rng.random() < 0.6 else text.title()
    flip = rng.random(len(base)) < 0.2
    return "".join(c.swapcase() if f and c.isalpha() else c for c, f in zip(base, flip))


def style_city(rng: np.random.Generator, city: str) -> str:
    """City in the writer's case: Title, UPPER, lower or Mixed, sometimes a trailing comma."""
    case = _pick(rng, ["title", "upper", "lower", "mixed"], [50, 36, 4, 10])
    if case == "title":
        words = city.title().split(" ")
        out = " ".join(w if not (w.lower() in ("of", "du", "de", "la") and i) else w.lower() for i, w in enumerate(words))
    elif case == "upper":
        out = city.upper()
    elif case == "lower":
        out = city.lower()
    else:
        out = _mixed_case(rng, city)
    if rng.random() < 0.03:
        out += ","
    return out


def style_state(rng: np.random.Generator, code: str) -> str:
    """STATE as written: KY, Ky., ky, K.Y., Kentucky, KENTUCKY, Calif. (varied case/dots)."""
    name = STATE_NAMES[code]
    options = ["CODE", "CODE.", "Code", "Code.", "code", "C.O.", "Name", "NAME", "Trad."]
    weights = [50, 10, 14, 8, 2, 5, 6, 3, 2 if code in TRADITIONAL else 0]
    style = _pick(rng, options, weights)
    if style == "CODE":
        return code
    if style == "CODE.":
        return code + "."
    if style == "Code":
        return code.title()
    if style == "Code.":
        return code.title() + "."
    if style == "code":
        return code.lower() + ("." if rng.random() < 0.2 else "")
    if style == "C.O.":
        return ".".join(code) + ("." if rng.random() < 0.85 else "")
    if style == "Name":
        return name
    if style == "NAME":
        return name.upper()
    trad = TRADITIONAL[code][int(rng.integers(len(TRADITIONAL[code])))]
    return trad + ("." if rng.random() < 0.8 else "")


def sample_place(rng: np.random.Generator) -> tuple[str, str, str, tuple[str, str, str]]:
    """(CITY, STATE, ZIP) as written, plus the gazetteer row (zip, city, state) it came from."""
    table = zip_table()
    zip_code, city, code, aliases = table[int(rng.integers(len(table)))]
    if aliases and rng.random() < 0.1:
        city = aliases[int(rng.integers(len(aliases)))]
    written_zip = zip_code
    if rng.random() < 0.02:
        written_zip = f"{zip_code}-{int(rng.integers(0, 10000)):04d}"
    return style_city(rng, city), style_state(rng, code), written_zip, (zip_code, city, code)


# --------------------------------------------------------------------------- one sampler per field type
#: ``sampler(rng, field_type, context) -> value as written``; context: one dict per form
ValueSampler = Callable[[np.random.Generator, FieldType, dict[str, Any]], str]

FIRST_NAMES = ("John", "Mary", "James", "Linda", "Robert", "Susan", "David", "Karen", "Maria", "Paul", "Ann", "Joe")
LAST_NAMES = ("Smith", "Johnson", "Brown", "Miller", "Davis", "Garcia", "Wilson", "Moore", "Taylor", "Clark", "Lee")
STREETS = ("Main", "Oak", "Pine", "Maple", "Elm", "Cedar", "Park", "Lake", "Hill", "Church", "Mill", "Spring")
STREET_KINDS = ("St", "Ave", "Rd", "Dr", "Ln", "Blvd", "Ct")
WORDS = ("red", "blue", "small", "large", "gift", "wrap", "please", "send", "back", "order", "note", "box", "paid",
         "cash", "check", "rush", "home", "office", "thank", "you")


def _place(rng: np.random.Generator, context: dict[str, Any]) -> tuple[str, str, str, tuple[str, str, str]]:
    """The form's place (CITY, STATE, ZIP as written, gazetteer row), drawn once per form."""
    if "place" not in context:
        context["place"] = sample_place(rng)
    return context["place"]


def _sample_date(rng: np.random.Generator, ftype: FieldType, context: dict[str, Any]) -> str:
    return sample_date(rng)


def _sample_us_city(rng: np.random.Generator, ftype: FieldType, context: dict[str, Any]) -> str:
    return _place(rng, context)[0]


def _sample_us_state(rng: np.random.Generator, ftype: FieldType, context: dict[str, Any]) -> str:
    return _place(rng, context)[1]


def _sample_us_zip(rng: np.random.Generator, ftype: FieldType, context: dict[str, Any]) -> str:
    return _place(rng, context)[2]


def _digit_string(rng: np.random.Generator, n: int) -> str:
    return "".join(str(d) for d in rng.integers(0, 10, n))


def _sample_digits(rng: np.random.Generator, ftype: FieldType, context: dict[str, Any]) -> str:
    """``length`` digits (else between min_length and max_length), sometimes in hyphenated groups."""
    o = ftype.options
    if o.length:
        n = o.length
    else:
        lo = o.min_length or min(4, o.max_length or 4)
        hi = o.max_length or max(lo, 8)
        n = int(rng.integers(lo, hi + 1))
    digits = _digit_string(rng, n)
    if n >= 6 and rng.random() < 0.1:  # 1234-5678
        cut = n // 2
        digits = f"{digits[:cut]}-{digits[cut:]}"
    return digits


def _sample_amount(rng: np.random.Generator, ftype: FieldType, context: dict[str, Any]) -> str:
    """``$12.50``, ``45.00``, ``1,234.5``, ``300``: mostly the option's decimals, loosely."""
    decimals = ftype.options.decimals
    whole = int(10 ** rng.uniform(0, 4))
    text = f"{whole:,}" if whole >= 1000 and rng.random() < 0.6 else str(whole)
    places = decimals if rng.random() < 0.8 else int(rng.integers(0, max(decimals, 1) + 1))
    if places:
        text += "." + _digit_string(rng, places)
    if rng.random() < 0.4:
        text = "$" + text
    return text


def _sample_phone(rng: np.random.Generator, ftype: FieldType, context: dict[str, Any]) -> str:
    """``(404) 555-0123``, ``404-555-0123``, ``404.555.0123``, sometimes ``+1 404 555 0123``."""
    o = ftype.options
    n = o.national_digits
    if n == 10:
        area = str(int(rng.integers(2, 10))) + _digit_string(rng, 2)
        exchange = str(int(rng.integers(2, 10))) + _digit_string(rng, 2)
        line = _digit_string(rng, 4)
        style = _pick(rng, ["paren", "hyphen", "dot", "space"], [40, 40, 10, 10])
        number = {"paren": f"({area}) {exchange}-{line}", "hyphen": f"{area}-{exchange}-{line}",
                  "dot": f"{area}.{exchange}.{line}", "space": f"{area} {exchange} {line}"}[style]
    else:
        digits = _digit_string(rng, n)
        groups = [digits[k:k + 3] for k in range(0, n, 3)]
        if len(groups) > 1 and len(groups[-1]) == 1:  # no lone last digit: 123-45-67 style
            groups[-2:] = [groups[-2][:2], groups[-2][2:] + groups[-1]]
        number = ("-" if rng.random() < 0.6 else " ").join(groups)
    if rng.random() < 0.08:
        number = f"+{o.country_code} " + number.replace("(", "").replace(")", "")
    return number


def _sample_text(rng: np.random.Generator, ftype: FieldType, context: dict[str, Any]) -> str:
    """A name, a street address or a few words, within ``max_length``."""
    def pick(words: tuple[str, ...]) -> str:
        return words[int(rng.integers(len(words)))]

    style = _pick(rng, ["name", "street", "words"], [40, 30, 30])
    if style == "name":
        text = f"{pick(FIRST_NAMES)} {pick(LAST_NAMES)}"
    elif style == "street":
        dot = "." if rng.random() < 0.4 else ""
        text = f"{int(rng.integers(1, 9999))} {pick(STREETS)} {pick(STREET_KINDS)}{dot}"
    else:
        text = " ".join(pick(WORDS) for _ in range(int(rng.integers(1, 4))))
        text = text.capitalize() if rng.random() < 0.5 else text
    if rng.random() < 0.25:
        text = text.upper()
    limit = ftype.options.max_length
    if limit and len(text) > limit:
        words = text.split(" ")
        while len(words) > 1 and len(" ".join(words)) > limit:
            words.pop()
        text = " ".join(words)[:limit].strip() or text[0]
    return text


def _sample_choice(rng: np.random.Generator, ftype: FieldType, context: dict[str, Any]) -> str:
    """One of the options, as spelled or in capitals (a choice is matched ignoring case)."""
    options = ftype.options.options
    text = options[int(rng.integers(len(options)))]
    return _pick(rng, [text, text.upper(), text.lower()], [70, 22, 8])


def _sample_checkbox(rng: np.random.Generator, ftype: FieldType, context: dict[str, Any]) -> str:
    """A tick box: "X" (sometimes "x"), or left blank ("None") about a third of the time."""
    if rng.random() < 0.35:
        return NONE
    return "X" if rng.random() < 0.85 else "x"


#: field type name -> its value sampler (one for every type of ``fields.types.FIELD_TYPES``)
VALUE_SAMPLERS: dict[str, ValueSampler] = {
    "date": _sample_date,
    "us_state": _sample_us_state,
    "us_zip": _sample_us_zip,
    "us_city": _sample_us_city,
    "digits": _sample_digits,
    "amount": _sample_amount,
    "phone": _sample_phone,
    "text": _sample_text,
    "choice": _sample_choice,
    "checkbox": _sample_checkbox,
}


def sample_value(rng: np.random.Generator, ftype: FieldType, context: dict[str, Any] | None = None) -> str:
    """A value as written for a field of type ``ftype`` (with its options); ``context`` is the
    form's shared dict (a fresh one when None). KeyError for a type without a sampler."""
    if ftype.name not in VALUE_SAMPLERS:
        raise KeyError(f"no value sampler for field type '{ftype.name}'; samplers: {', '.join(VALUE_SAMPLERS)}")
    return VALUE_SAMPLERS[ftype.name](rng, ftype, {} if context is None else context)
