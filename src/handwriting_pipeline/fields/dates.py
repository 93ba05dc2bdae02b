"""DATE: month names and the parser behind the "plausible date" validator."""

from __future__ import annotations

import re
from datetime import date

from handwriting_pipeline.fields.schema import is_missing

MONTHS = {
    "JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8,
    "SEP": 9, "SEPT": 9, "OCT": 10, "NOV": 11, "DEC": 12,
}


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
