"""The character classes of every field type, by type name: what an engine may output for a
field of that type (``allowed``) and what a person may type when correcting one (``written``).

A table of strings with no imports, so that :mod:`.schema` can derive ``ALLOWED_CHARS`` and
``WRITTEN_CHARS`` of the HSF form from its spec without importing the field types' code (which
imports :mod:`.schema`). Each class in :mod:`.types` takes its characters from here; a test
checks that the two tables name the same types.
"""

from __future__ import annotations

from dataclasses import dataclass

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"


@dataclass(frozen=True)
class Chars:
    """What an engine may output (``allowed``) and what a person may type (``written``)."""

    allowed: str
    written: str


_DATE = DIGITS + "/-.,' " + LETTERS
_CITY = " .-'" + LETTERS
_STATE = " ." + LETTERS
_ZIP = DIGITS + "-"

#: type name -> its characters. The US types keep the HSF form's sets exactly (the written sets
#: add what writers put on the real forms: commas after CITY or STATE, a digit in a CITY).
CHARS: dict[str, Chars] = {
    "date": Chars(_DATE, _DATE),
    "us_city": Chars(_CITY, _CITY + "," + DIGITS),
    "us_state": Chars(_STATE, _STATE + ","),
    "us_zip": Chars(_ZIP, _ZIP + " "),
    "digits": Chars(DIGITS, DIGITS + " -"),
    "amount": Chars(DIGITS + ".,$", DIGITS + ".,$ -"),
    "phone": Chars(DIGITS + "()-+. ", DIGITS + "()-+. "),
    "text": Chars(" .,-'/&#" + DIGITS + LETTERS, " .,-'/&#()" + DIGITS + LETTERS),
    "choice": Chars(" .-'" + DIGITS + LETTERS, " .-'," + DIGITS + LETTERS),
    "checkbox": Chars("Xx", "Xx "),
}

#: every field type a form spec may name
TYPE_NAMES: tuple[str, ...] = tuple(CHARS)
