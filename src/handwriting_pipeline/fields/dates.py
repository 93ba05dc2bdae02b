"""DATE: month names, the parser behind the "plausible date" validator, and the repairs of
the OCR slips a written date shows most (a '/' read as '1', look-alike digits, month names one
slip away)."""

from __future__ import annotations

import re
from datetime import date
from itertools import combinations

from handwriting_pipeline.fields.schema import is_missing
from handwriting_pipeline.fields.text import edit_distance, respell

MONTHS = {
    "JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8,
    "SEP": 9, "SEPT": 9, "OCT": 10, "NOV": 11, "DEC": 12,
}


def _month(word: str) -> int | None:
    word = word.upper().rstrip(".")
    return MONTHS.get(word[:4]) or MONTHS.get(word[:3])


def parse_date(value: str) -> date | None:
    """Best-effort parse of a handwritten date: "8/28/89", "08-28-1989", "8 28 89",
    "Aug. 28, 1989", "Sept 9, '89", "28 Aug 89". None when it is not a date.

    Three fixed shapes on purpose, not ``dateutil.parser.parse`` (which ``normalize``'s DATE_iso
    uses): on the 5,111 distinct DATE strings of the shared labels and recorded outputs
    dateutil gives another answer for 309 (it takes a bare ZIP or year as a date, fills a
    missing day or month, pivots 2-digit years around today), and this validator steers the
    vote and the date repairs."""
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


# --------------------------------------------------------------------------- OCR slips
_DATE_DIGITS = str.maketrans({"O": "0", "o": "0", "D": "0", "B": "8", "l": "1", "I": "1", "|": "1",
                               "S": "5", "s": "5", "Z": "2", "z": "2", "g": "9", "q": "9", "G": "6",
                               "b": "6", "T": "7"})


def repair_date(text: str) -> str:
    """Fix the OCR slips a numeric date shows most: a '/' read as '1' ("9116/89" -> "9/16/89")
    and letters that look like digits ("B-23-89" -> "8-23-89"). Only used when the text as read
    is not a plausible date and exactly one repair makes it one (fewest changes first)."""
    if re.fullmatch(r"\d{1,2}[-.]\d{1,2}[-.]\d{2,4}", text) and set(re.findall(r"[-.]", text)) == {"-", "."}:
        text = text.replace(".", "-")  # a dash read as a dot ("8-28.89"): writers keep one separator
    if is_plausible_date(text) or not re.search(r"\d", text):
        return text
    compact = text.replace(" ", "")
    candidates = []
    if re.fullmatch(r"[\dOoDBlI|SsZzgqGbT/.\-]+", compact) and sum(c.isdigit() for c in compact) >= 3:
        digits = compact.translate(_DATE_DIGITS)
        if digits != compact and is_plausible_date(digits):
            candidates.append((sum(a != b for a, b in zip(digits, compact)), digits))
        ones = [i for i, ch in enumerate(digits) if ch == "1"]
        seps = set(re.findall(r"[/.\-]", digits))
        if len(ones) <= 8 and seps <= {"/"}:
            for n in (1, 2):
                for combo in combinations(ones, n):
                    cand = "".join("/" if i in combo else ch for i, ch in enumerate(digits))
                    if cand.count("/") == 2 and is_plausible_date(cand):
                        changes = n + sum(a != b for a, b in zip(digits, compact))
                        candidates.append((changes, cand))
    if not candidates:
        return text
    best = min(c[0] for c in candidates)
    chosen = {c[1] for c in candidates if c[0] == best}
    return chosen.pop() if len(chosen) == 1 else text


_MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                "October", "November", "December", "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep",
                "Sept", "Oct", "Nov", "Dec"]


def respell_months(text: str) -> str:
    """Month names one slip away (two for long names) from a real one, respelled in the
    writer's case ("Auq" -> "Aug", "Supt" -> "Sept", "Guqust" -> "August")."""
    def fix(m: re.Match) -> str:
        word = m.group(0)
        if len(word) < 3 or any(word.upper() == n.upper() for n in _MONTH_NAMES):
            return word
        limit = 1 if len(word) <= 5 else 2
        scored = sorted((edit_distance(word, n), n) for n in _MONTH_NAMES if abs(len(n) - len(word)) <= limit)
        if scored and scored[0][0] <= limit and (len(scored) == 1 or scored[1][0] > scored[0][0]):
            return respell(word, scored[0][1])
        return word

    return re.sub(r"[A-Za-z]+", fix, text)

