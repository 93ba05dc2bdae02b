"""Field values as a 1989 form filler would write them: dates, and real city/state/ZIP triples.

Places come from the offline ``zipcodes`` database (active STANDARD ZIP codes, so big cities,
which have many ZIPs, come up more often, like on the real forms). Case, dots and spelling
variants are chosen here; the string returned is exactly what the generator draws.
"""

from __future__ import annotations

import calendar
from functools import lru_cache

import numpy as np

from handwriting_pipeline.fields import ALLOWED_CHARS, STATE_ABBREVIATIONS, STATE_NAMES

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
